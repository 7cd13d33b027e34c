#!/bin/sh
# shellcheck shell=sh
#
# agentwatch hook for Claude Code, registered for every event.
#
# Reads the hook payload (one JSON object) on stdin, stamps it with "_received_at" (integer milliseconds
# since the epoch) and appends it as ONE line, in ONE write(), to the events file. It never prints, never
# blocks Claude Code and always exits 0.
#
#   AGENTWATCH_EVENTS_FILE     where to append (default: $HOME/.claude/agentwatch/events.jsonl)
#   AGENTWATCH_MAX_LINE_BYTES  longest line written, newline included (default: 65536); a bigger payload
#                              is replaced by a short line keeping its identifying fields and "_truncated"
#   AGENTWATCH_MAX_FILE_BYTES  size past which the file is rotated to <file>.1 (default: 67108864, 64 MiB)
#   AGENTWATCH_BYPASS=1        do nothing
#   AGENTWATCH_DEBUG=1         report problems on stderr (silent otherwise)
#
# Why one write(): parallel hooks append to the same file with O_APPEND, and a line split over two write()
# calls can interleave with another hook's line. Measured with strace -f -e trace=write:
#   - builtin printf '%s' "$line" (newline inside the argument) is one write() up to 4096 bytes under dash,
#     bash and busybox sh (bash and busybox print through stdio with a 4 KiB buffer and split above it;
#     dash's printf '%s\n' would write the newline separately, hence the newline in the argument);
#   - above that the line is piped into dd with obs > line length: dd gathers its partial reads from the
#     pipe into the output block and writes it once at end of input (POSIX dd aggregates into obs-sized
#     blocks when ibs != obs; GNU, busybox and BSD dd do).
#
# The file holds raw prompts and tool output: the hook creates its directory 0700 and the file 0600 (umask
# 077, no process), and never changes the mode of an existing one (ingest warns about a readable one).
#
# Rotation, by rename: past AGENTWATCH_MAX_FILE_BYTES the file becomes <file>.1 (replacing the older .1:
# one old file is kept) and the next append creates a new one. ingest follows that (ingest/tail.py): it
# reads the old file, still open, to its end before it opens the new one, and after a restart it finds the
# old file by (dev, ino) and fingerprint among the siblings named <file>*, <file>.1 among them. Limits:
# an ingest a whole file behind (stopped, or Redis down, while a whole new file is written) loses the file
# in between, which the next rotation put over .1: the price of a bounded file (2 x 64 MiB at most by
# default). And a hook that opened the old file just before the rename but writes after ingest has left it
# (ingest leaves at its first empty read after the rename; the dd path below holds the file open for a
# millisecond or so before it writes) puts a line where ingest no longer reads.
#
# The size check costs a process (find: ~1.5 ms on a 2-core machine where the whole hook takes ~3.5), so
# it is not made on every call: see rotate_due(). The rename itself is rare and takes a lock: see rotate().

set -u

# Lines up to this size (newline included) are written by the builtin printf; see above.
BUILTIN_WRITE_MAX=4096
DEFAULT_MAX_LINE_BYTES=65536
DEFAULT_MAX_FILE_BYTES=67108864
# The size is checked about once per this many bytes appended, at most: see rotate_due().
CHECK_BYTES_MAX=1048576
# Longest string value kept on a truncated line; a longer one is dropped, never cut.
TRUNCATED_VALUE_MAX=1024

NL='
'

say() {
    printf 'agentwatch-hook: %s\n' "$1" >&2
}

# Sets _ts to integer milliseconds from "<seconds>.<fraction>" ($1); fails unless it has that shape
# with at least three fraction digits.
ms_from() {
    case $1 in
        *.*) ;;
        *) return 1 ;;
    esac
    _s=${1%%.*}
    _f=${1#*.}
    case $_s in
        '' | *[!0-9]*) return 1 ;;
    esac
    case $_f in
        [0-9][0-9][0-9]*) ;;
        *) return 1 ;;
    esac
    _f3=${_f#???}
    _ts=$_s${_f%"$_f3"}
}

# Sets _ts. Bash 5 and busybox sh have a microsecond clock in $EPOCHREALTIME, which saves running date;
# it is trusted only if it moved while stdin was read ($1 then, $2 now): in other shells an
# EPOCHREALTIME inherited from the environment would be a frozen value.
stamp() {
    if [ -n "$1" ] && [ "$1" != "$2" ] && ms_from "$1"; then
        return 0
    fi
    # GNU and busybox date know %N; BSD date (macOS) does not and prints "3N" or "%3N" instead: then
    # whole seconds it is.
    _d=$(date +%s.%3N 2>/dev/null) || _d=
    if ms_from "$_d"; then
        return 0
    fi
    _s=${_d%%[!0-9]*}
    if [ -n "$_s" ]; then
        _ts=${_s}000
    else
        say "date gave no usable time: '$_d'"
        _ts=0
    fi
}

# Prints (no newline) the line standing for an oversized payload read on stdin: _received_at, the
# identifying fields found as top-level JSON strings (and, for the Agent/Task tool, tool_input's
# subagent_type, model, description), _truncated and _original_bytes, within $_max bytes with newline.
# The scan never parses a value: escapes are masked with same-length "__", so the text splits on its
# real quotes into structure (odd parts, which carry the nesting depth) and string bodies (even parts).
shrink() {
    awk -v ts="$_ts" -v orig="$1" -v max="$_max" -v vmax="$TRUNCATED_VALUE_MAX" '
    function keep(k, v,   c) {
        if (k in got || length(v) > vmax) return
        c = v
        gsub(/\\(["\\\/bfnrt]|u[0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f])/, "", c)
        if (c ~ /[\\"]/ || c ~ /[\001-\037]/) return
        got[k] = v
    }
    function add(k, name, room,   f) {
        if (!(k in got)) return
        f = "\"" name "\":\"" got[k] "\""
        if (length(acc) + 1 + length(f) <= room) acc = acc "," f
    }
    { s = s $0 }
    END {
        t = s
        gsub(/\\./, "__", t)
        n = split(t, p, "\"")
        depth = 0; at = 1; top = ""
        for (i = 1; i <= n; i++) {
            if (i % 2) {
                o = p[i]
                depth += gsub(/[[{]/, "", o)
                depth -= gsub(/[]}]/, "", o)
            } else if (i + 1 <= n && p[i + 1] ~ /^[ \t]*:/) {
                if (depth == 1) top = p[i]
                if (i + 2 <= n && p[i + 1] ~ /^[ \t]*:[ \t]*$/) {
                    v = substr(s, at + length(p[i]) + length(p[i + 1]) + 2, length(p[i + 2]))
                    if (depth == 1) keep(p[i], v)
                    else if (depth == 2 && top == "tool_input") keep("tool_input." p[i], v)
                }
            }
            at += length(p[i]) + 1
        }
        tail = ",\"_truncated\":true,\"_original_bytes\":" orig "}"
        # Fields in order of importance, each only if the line (newline included) stays within max.
        room = max - length(tail) - 1
        acc = "{\"_received_at\":" ts
        add("hook_event_name", "hook_event_name", room)
        add("session_id", "session_id", room)
        add("agent_id", "agent_id", room)
        add("agent_type", "agent_type", room)
        add("tool_name", "tool_name", room)
        add("tool_use_id", "tool_use_id", room)
        if (acc ~ /"tool_name":"(Agent|Task)"/) {
            head = acc
            acc = ""
            room -= length(head) + length(",\"tool_input\":{}") - 1
            add("tool_input.subagent_type", "subagent_type", room)
            add("tool_input.model", "model", room)
            add("tool_input.description", "description", room)
            acc = (acc == "") ? head : (head ",\"tool_input\":{" substr(acc, 2) "}")
        }
        printf "%s%s", acc, tail
    }'
}

# Appends $_line (newline included) to $_file with one write(); fails if it could not.
append() {
    if [ -n "$_dir" ] && [ ! -d "$_dir" ]; then
        # 0700, parents included, under umask 077.
        mkdir -p "$_dir" || {
            say "cannot create $_dir"
            return 1
        }
    fi
    if [ "${#_line}" -le "$BUILTIN_WRITE_MAX" ]; then
        printf '%s' "$_line" >>"$_file" || {
            say "cannot append to $_file"
            return 1
        }
    else
        # ibs must differ from obs, or dd copies each (partial) read as it comes.
        printf '%s' "$_line" | dd ibs=4096 obs=$((${#_line} + 1)) 2>/dev/null >>"$_file" || {
            say "cannot append to $_file"
            return 1
        }
    fi
}

# Succeeds about once per _check_bytes bytes appended: with probability (line length / _check_bytes), where
# _check_bytes is 1/16 of the limit, at most CHECK_BYTES_MAX. So the file passes its limit by about that much
# (1 MiB of 64 MiB by default), a 1 KiB line pays for find once in 1024 calls, and a line as long as
# _check_bytes every time. A counter would need a file; the dice are the clock's milliseconds and the pid,
# which both change from call to call, spread over 0..65535 by Fibonacci hashing (40503 = 2^16 / golden
# ratio), which also scatters the nearby values that consecutive calls bring.
rotate_due() {
    _check_bytes=$((_limit / 16))
    if [ "$_check_bytes" -gt "$CHECK_BYTES_MAX" ]; then
        _check_bytes=$CHECK_BYTES_MAX
    fi
    _dice=$(((_ts * 31 + $$) % 65536 * 40503 % 65536))
    [ $((_dice * _check_bytes)) -lt $((${#_line} * 65536)) ]
}

# Succeeds if $_file is a regular file of more than $1 bytes (a symlink is not followed, so never rotated).
# find, not ls or wc: nothing to parse. "./" keeps a relative name starting with "-" or "!" from being read
# as an expression.
bigger_than() {
    case $_file in
        /*) _big=$(find "$_file" -type f -size +"$1"c 2>/dev/null) ;;
        *) _big=$(find "./$_file" -type f -size +"$1"c 2>/dev/null) ;;
    esac
    [ -n "$_big" ]
}

# Renames $_file to $_file.1 if it is past $_limit bytes.
#
# Parallel hooks can find the same big file at once. If each simply renamed, the second rename would take the
# NEW file, created meanwhile by a third hook's append, and put it over .1: the old file would be gone before
# ingest read its end (a stopped ingest finds it by (dev, ino) among the siblings; it is not there any more),
# and the new file's first lines with it (ingest goes from the old file to whatever is at the path; the
# lines it missed sit in .1). rename() cannot say "only if it is still that file", so:
#   - renames happen under a lock, a directory (mkdir is atomic), named .<file>.rotating so that ingest,
#     which watches names starting with <file>, does not see it; a hook that does not get the lock leaves
#     the rotation to the one that has it;
#   - under the lock the size is checked again: a hook that looked before the rename and locks after it
#     sees the new, small file and does nothing. So each big file is renamed exactly once, and a line is
#     never lost or written twice by rotation: writers only ever append to whatever file the path names.
# A hook killed while holding the lock (it is held for the two processes find and mv) would stop rotation
# for good; a lock still there when the file is past twice the limit is taken as stale (a rename takes
# milliseconds, growing by a whole limit takes far longer) and removed, so the next check rotates.
rotate() {
    bigger_than "$_limit" || return 0
    _lock=$_dir/.${_file##*/}.rotating
    if ! mkdir "$_lock" 2>/dev/null; then
        if bigger_than $((_limit * 2)); then
            say "removing the stale rotation lock $_lock"
            rmdir "$_lock" 2>/dev/null || say "cannot remove $_lock"
        fi
        return 0
    fi
    if bigger_than "$_limit"; then
        if [ -d "$_file.1" ]; then
            say "$_file.1 is a directory; not rotating"
        else
            mv -f "$_file" "$_file.1" || say "cannot rename $_file to $_file.1"
        fi
    fi
    rmdir "$_lock" || say "cannot remove $_lock"
}

main() {
    if [ "${AGENTWATCH_BYPASS:-}" = 1 ]; then
        return 0
    fi
    _file=${AGENTWATCH_EVENTS_FILE:-}
    if [ -z "$_file" ]; then
        if [ -z "${HOME:-}" ]; then
            say "neither AGENTWATCH_EVENTS_FILE nor HOME is set; nothing written"
            return 0
        fi
        _file=$HOME/.claude/agentwatch/events.jsonl
    fi
    _max=${AGENTWATCH_MAX_LINE_BYTES:-$DEFAULT_MAX_LINE_BYTES}
    case $_max in
        '' | *[!0-9]* | 0*)
            say "AGENTWATCH_MAX_LINE_BYTES has value '$_max'; not a positive integer, using $DEFAULT_MAX_LINE_BYTES"
            _max=$DEFAULT_MAX_LINE_BYTES
            ;;
    esac
    _limit=${AGENTWATCH_MAX_FILE_BYTES:-$DEFAULT_MAX_FILE_BYTES}
    case $_limit in
        '' | *[!0-9]* | 0* | ???????????????????*)
            say "AGENTWATCH_MAX_FILE_BYTES has value '$_limit'; not a positive integer below 10^18, using $DEFAULT_MAX_FILE_BYTES"
            _limit=$DEFAULT_MAX_FILE_BYTES
            ;;
    esac
    case $_file in
        */*) _dir=${_file%/*} ;;
        *) _dir=. ;;
    esac

    # shellcheck disable=SC3028 # EPOCHREALTIME is bash/busybox only; stamp() checks that it is live.
    _t0=${EPOCHREALTIME:-}
    # Raw CR/LF cannot occur inside JSON strings, so deleting them is safe and makes one line; NUL
    # cannot be held in a shell variable at all.
    _payload=$(tr -d '\r\n\000')
    # shellcheck disable=SC3028
    stamp "$_t0" "${EPOCHREALTIME:-}"

    case $_payload in
        '{'*'}') ;;
        *)
            say "stdin is not a JSON object; nothing written"
            return 0
            ;;
    esac
    # {"_received_at":<stamp>,  is 17 bytes plus the stamp; the payload loses its "{", the line gains "\n".
    if [ $((${#_payload} + 17 + ${#_ts})) -le "$_max" ]; then
        _rest=${_payload#?}
        _sep=,
        case $_rest in
            '}') _sep= ;;
            [[:space:]]*)
                _r=$_rest
                while :; do
                    case $_r in
                        [[:space:]]*) _r=${_r#?} ;;
                        *) break ;;
                    esac
                done
                if [ "$_r" = '}' ]; then
                    _sep=
                fi
                ;;
        esac
        _line="{\"_received_at\":$_ts$_sep$_rest$NL"
    else
        _line=$(printf '%s' "$_payload" | shrink "${#_payload}")
        case $_line in
            '{"_received_at":'*'}') ;;
            *)
                say "could not shorten an oversized payload; writing the bare marker"
                _line="{\"_received_at\":$_ts,\"_truncated\":true,\"_original_bytes\":${#_payload}}"
                ;;
        esac
        _line=$_line$NL
    fi
    append || return 0
    if rotate_due; then
        rotate
    fi
}

# Byte lengths and byte-wise patterns, whatever the user's locale.
LC_ALL=C
export LC_ALL
# What the hook creates (directory, file, lock) is private: 0700 and 0600.
umask 077
# Nothing on stdout ever (Claude Code reads it); stderr only when debugging.
exec >/dev/null
if [ "${AGENTWATCH_DEBUG:-}" != 1 ]; then
    exec 2>/dev/null
fi
# Exit 0 whatever happens, even if the shell itself stops on an error: exit 2 would block Claude Code.
trap 'exit 0' EXIT

main "$@"
