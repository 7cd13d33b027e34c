// Node ids, shared by model.js and the pure modules it uses (so none of them imports another in a circle).
export const MAIN = "main"; // the agent_id of a session's own thread, its orchestrator
export const nodeId = (sessionId, agentId) => `${sessionId}/${agentId}`;
