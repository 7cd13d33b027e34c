import assert from "node:assert/strict";
import { test } from "node:test";

import { messagesOf } from "../connection.js";
import { GraphModel } from "../model.js";

const snapshot = { type: "snapshot", seq: 3, epoch: "e1", alive: [] };
const event = (seq) => ({
  type: "event",
  seq,
  epoch: "e1",
  data: { type: "tool_use", ts: 1000 + seq, session_id: "s1", agent_id: "main", tool: "Read" },
});

test("a frame is one message or an array of messages, in order", () => {
  assert.deepEqual(messagesOf(JSON.stringify(snapshot)), [snapshot]);
  assert.deepEqual(messagesOf(JSON.stringify([event(4), event(5)])), [event(4), event(5)]);
  assert.deepEqual(messagesOf("not json"), []);
});

test("a batched frame moves the model exactly as its messages one by one", () => {
  const one = new GraphModel();
  const batched = new GraphModel();
  const frames = [snapshot, event(4), event(5), event(6)];
  for (const msg of frames) one.receive(msg, 0);
  for (const text of [JSON.stringify(snapshot), JSON.stringify(frames.slice(1))]) {
    for (const msg of messagesOf(text)) batched.receive(msg, 0);
  }
  assert.equal(batched.seq, 6);
  assert.equal(one.seq, 6);
  assert.deepEqual(batched.resumeParams(), one.resumeParams());
});
