# shellcheck shell=bash
# Shared helpers for the scripts in this folder. Source it; it defines functions and variables
# only and runs nothing.

NU_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
NU_CACHE="$NU_ROOT/.cache"

nu_say() { printf '%s\n' "$*"; }
nu_warn() { printf '%s: warning: %s\n' "${NU_PROG:-nurion}" "$*" >&2; }
# nu_die MESSAGE [HINT] — print an error (and how to fix it) and exit 1.
nu_die() {
    printf '%s: error: %s\n' "${NU_PROG:-nurion}" "$1" >&2
    if [ -n "${2:-}" ]; then
        printf '%s: hint: %s\n' "${NU_PROG:-nurion}" "$2" >&2
    fi
    exit 1
}

# Monotonic-enough wall clock in seconds with milliseconds, and elapsed time since a mark.
nu_now() { date +%s.%N; }
nu_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1fs", b - a }'; }

nu_have() { command -v "$1" >/dev/null 2>&1; }

# Run a command as root: directly when we are root, through sudo when available, else fail.
nu_as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif nu_have sudo; then
        sudo "$@"
    else
        nu_die "this step needs root and sudo is not installed: $*" \
            "run it as root, or install sudo and give this user the right to use it"
    fi
}

# nu_port_owner PORT — prints "pid=N (name)" or "unknown process" for a listening TCP port and
# returns 0 if something listens on it, 1 if it is free.
nu_port_owner() {
    local line
    line=$(ss -Hltnp "sport = :$1" 2>/dev/null | head -n 1)
    if [ -z "$line" ]; then
        return 1
    fi
    if [[ "$line" =~ users:\(\(\"([^\"]+)\",pid=([0-9]+) ]]; then
        printf 'pid=%s (%s)\n' "${BASH_REMATCH[2]}" "${BASH_REMATCH[1]}"
    else
        printf 'unknown process\n'
    fi
    return 0
}

# nu_port_pid PORT — the pid listening on PORT, or nothing.
nu_port_pid() {
    ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*pid=\([0-9][0-9]*\).*/\1/p' | head -n 1
}

# nu_pid_alive PIDFILE — prints the pid and returns 0 when the file names a live process.
nu_pid_alive() {
    local pid
    [ -f "$1" ] || return 1
    pid=$(tr -dc '0-9' <"$1")
    [ -n "$pid" ] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    printf '%s\n' "$pid"
}
