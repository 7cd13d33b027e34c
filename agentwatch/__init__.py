"""agentwatch: a live view of Claude Code agents. This package holds only the command line."""
