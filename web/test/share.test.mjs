import assert from "node:assert/strict";
import { test } from "node:test";

import { streamUrl } from "../connection.js";
import { GraphModel } from "../model.js";
import { shareText } from "../present.js";

const EPOCH = "e1";
const T0 = 1_700_000_000_000;
const SHARE = { session: "s-a", expires: 1_700_000_600 };

function sharedModel(seq = 10) {
  const model = new GraphModel();
  const alive = [{ session_id: "s-a", agent_id: "main", project: "/home/dev/acme", spawned_at: T0, last_seen: T0 }];
  model.receive({ type: "snapshot", seq, epoch: EPOCH, alive, filtered: true, share: SHARE }, T0);
  return model;
}

const event = (seq, data = {}) => ({
  type: "event",
  seq,
  epoch: EPOCH,
  data: { type: "tool_use", tool: "Read", ts: T0, session_id: "s-a", agent_id: "main", ...data },
});

test("a filtered view takes a ping ahead of it as events skipped, then stays gap-free", () => {
  const model = sharedModel(10);
  assert.deepEqual(model.share, SHARE);
  assert.equal(model.filtered, true);
  assert.deepEqual(model.receive({ type: "ping", seq: 14, epoch: EPOCH }, T0), { effects: [] });
  assert.equal(model.seq, 14);
  assert.equal(model.receive(event(15), T0).effects[0].type, "pulse");
  // Without the ping that says 16..19 were for other sessions, a jump is still a gap.
  assert.equal(model.receive(event(20), T0).resync, "gap");
  assert.equal(model.receive({ type: "ping", seq: 15, epoch: "other" }, T0).resync, "epoch");
  assert.deepEqual(model.resumeParams(), { since: 15, epoch: EPOCH });
});

test("a full view still reads a ping ahead of it as lost events", () => {
  const model = sharedModel(10);
  model.receive({ type: "snapshot", seq: 10, epoch: EPOCH, alive: [] }, T0);
  assert.equal(model.filtered, false);
  assert.equal(model.share, null);
  assert.equal(model.receive({ type: "ping", seq: 12, epoch: EPOCH }, T0).resync, "gap");
});

test("the page passes its share link to /stream, with the resume point", () => {
  assert.equal(
    streamUrl(new URL("http://h:8201/?share=abc.def"), { since: 4, epoch: "e" }),
    "ws://h:8201/stream?share=abc.def&since=4&epoch=e",
  );
});

test("the share banner names the project and counts down; expiry comes from the relay", () => {
  assert.equal(shareText("/home/dev/acme-shop", "s-a", 3_600_000, false), "shared view of acme-shop, expires in 1 h 0 min");
  assert.equal(shareText(null, "7f3c2a91-5b6e-4d0a", 42_000, false), "shared view of session 7f3c2a91-5b6…, expires in 42 s");
  assert.equal(shareText("acme", "s-a", -5_000, false), "shared view of acme, expires now");
  assert.equal(shareText("acme", "s-a", 5_000, true), "shared view of acme: the link has expired");
});
