#!/usr/bin/env bash
# start-swift.sh - start a throw-away, single-node OpenStack Swift on loopback.
#
# Usage:   eval "$(./start-swift.sh)"        # exports ST_AUTH ST_USER ST_KEY SWIFT_TEST_DIR
#          ./stop-swift.sh "$SWIFT_TEST_DIR"
#
# Environment knobs (all optional):
#   SWIFT_VENV        venv holding `swift`, made by install-swift.sh if missing
#                     [${XDG_CACHE_HOME:-$HOME/.cache}/nbflask/swift-venv]
#   SWIFT_PYTHON      interpreter used to create that venv                         [python3]
#   SWIFT_TEST_DIR    state dir (configs, rings, data, logs, pids)                 [mktemp -d]
#   SWIFT_PROXY_PORT / SWIFT_ACCOUNT_PORT / SWIFT_CONTAINER_PORT / SWIFT_OBJECT_PORT
#                     fixed ports; any left unset are picked free by the kernel
#   SWIFT_PORT_BASE   if set: proxy=BASE, object=BASE+1, container=BASE+2, account=BASE+3
#   SWIFT_READY_TIMEOUT  seconds to wait for readiness                             [30]
#   SWIFT_VERSIONING  1 = enable X-Versions-Location/X-History-Location and
#                     X-Versions-Enabled object versioning (default 1)
#   SWIFT_WATCH_PID   if set: a watchdog runs stop-swift.sh once that pid has exited
#                     (servers setsid() themselves, so they outlive a killed test runner)
#   SWIFT_TOKEN_LIFE  tempauth token lifetime in seconds (short = token-expiry tests) [86400]
#   SWIFT_OBJECT_BACKEND  disk (default; needs user xattrs) | mem (swift.obj.mem_server,
#                     objects kept in RAM and lost on restart)
#
# Restart: if SWIFT_TEST_DIR already holds a configured instance (etc/proxy-server.conf),
# configs/rings/ports are reused and only the servers are (re)started: data survives.
#
# stdout: only `export VAR=value` lines (safe for eval). Progress goes to stderr.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
READY_TIMEOUT=${SWIFT_READY_TIMEOUT:-30}
VERSIONING=${SWIFT_VERSIONING:-1}
OBJECT_BACKEND=${SWIFT_OBJECT_BACKEND:-disk}
TOKEN_LIFE=${SWIFT_TOKEN_LIFE:-86400}
log() { echo "start-swift: $*" >&2; }
T0=$(date +%s.%N)
elapsed() { awk "BEGIN { printf \"%.2f\", $(date +%s.%N) - $T0 }"; }
phase() { [ -z "${SWIFT_TIMING:-}" ] || log "$(elapsed)s $*"; }   # SWIFT_TIMING=1: phase timings

# ---------------------------------------------------------------- install
# (on a bare Debian 12: apt-get install -y python3-venv  -- needed by `python3 -m venv`)
SWIFT_VENV=$("$HERE/install-swift.sh")
PY="$SWIFT_VENV/bin/python"
BIN="$SWIFT_VENV/bin"

# ---------------------------------------------------------------- layout
D=${SWIFT_TEST_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/swift-test.XXXXXX")}
mkdir -p "$D/etc" "$D/srv/d1" "$D/run" "$D/log" "$D/cache"
D=$(cd "$D" && pwd)

# Fail early if the data dir cannot hold user xattrs (object server needs them).
[ "$OBJECT_BACKEND" = mem ] || "$PY" - "$D/srv/d1" <<'EOF'
import os, sys, tempfile
fd, p = tempfile.mkstemp(dir=sys.argv[1])
try:
    os.setxattr(p, 'user.swift.test', b'1')
except OSError as e:
    sys.exit('start-swift: %s does not support user xattrs (%s); set SWIFT_TEST_DIR elsewhere' % (sys.argv[1], e))
finally:
    os.close(fd); os.unlink(p)
EOF

conf_port() { sed -n 's/^bind_port = //p' "$D/etc/$1-server.conf"; }
if [ -f "$D/etc/proxy-server.conf" ]; then
    log "reusing existing instance in $D"
    PROXY_PORT=$(conf_port proxy); OBJECT_PORT=$(conf_port object)
    CONTAINER_PORT=$(conf_port container); ACCOUNT_PORT=$(conf_port account)
else
# ---------------------------------------------------------------- ports
free_ports() {  # print N distinct free TCP ports on 127.0.0.1
    "$PY" - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(('127.0.0.1', 0)); socks.append(s)
print(' '.join(str(s.getsockname()[1]) for s in socks))
for s in socks: s.close()
EOF
}
if [ -n "${SWIFT_PORT_BASE:-}" ]; then
    : "${SWIFT_PROXY_PORT:=$SWIFT_PORT_BASE}"
    : "${SWIFT_OBJECT_PORT:=$((SWIFT_PORT_BASE + 1))}"
    : "${SWIFT_CONTAINER_PORT:=$((SWIFT_PORT_BASE + 2))}"
    : "${SWIFT_ACCOUNT_PORT:=$((SWIFT_PORT_BASE + 3))}"
fi
read -r P1 P2 P3 P4 < <(free_ports 4)
PROXY_PORT=${SWIFT_PROXY_PORT:-$P1}
OBJECT_PORT=${SWIFT_OBJECT_PORT:-$P2}
CONTAINER_PORT=${SWIFT_CONTAINER_PORT:-$P3}
ACCOUNT_PORT=${SWIFT_ACCOUNT_PORT:-$P4}
RUN_USER=$(id -un)

# ---------------------------------------------------------------- configs
HASH=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
FERNET_KEY=$("$PY" -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')

# NB: with swift_dir != /etc/swift only [swift-hash] is read from this file;
# storage policies and [swift-constraints] are read from /etc/swift/swift.conf
# at import time (absent => one default replication policy "Policy-0").
cat > "$D/etc/swift.conf" <<EOF
[swift-hash]
swift_hash_path_prefix = pre$HASH
swift_hash_path_suffix = suf$HASH
EOF

# One config per storage server: $1 = server (account|container|object), $2 = port, $3 = app.
storage_conf() {
cat > "$D/etc/$1-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $2
workers = 0
user = $RUN_USER
swift_dir = $D/etc
devices = $D/srv
mount_check = false
disable_fallocate = true
log_level = INFO

[pipeline:main]
pipeline = healthcheck $1-server

[app:$1-server]
use = egg:swift#$3

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
}
storage_conf account "$ACCOUNT_PORT" account
storage_conf container "$CONTAINER_PORT" container
storage_conf object "$OBJECT_PORT" "$( [ "$OBJECT_BACKEND" = mem ] && echo mem_object || echo object )"

if [ "$VERSIONING" = 1 ]; then
    VW_PIPE="versioned_writes symlink"
else
    VW_PIPE="symlink"
fi
cat > "$D/etc/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $PROXY_PORT
workers = 0
user = $RUN_USER
swift_dir = $D/etc
log_level = INFO

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging listing_formats bulk tempurl tempauth copy container-quotas slo dlo $VW_PIPE proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true
# With one node per ring, the default error-limiting (10 errors => node skipped
# for 60 s) turns a restarted backend into 60 s of 503s. Keep it short.
error_suppression_interval = 1

[filter:tempauth]
use = egg:swift#tempauth
# <account>_<user> = <key> <groups...>
user_admin_admin = admin .admin .reseller_admin
user_test_tester = testing .admin
user_test2_tester2 = testing2 .admin
user_test_tester3 = testing3
# Stateless (Fernet) tokens, so no memcached is needed.
fernet_key_1 = $FERNET_KEY
active_fernet_key_id = 1
token_life = $TOKEN_LIFE

[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_versioned_writes = true
allow_object_versioning = true
EOF
# The other filters of the pipeline take no settings: [filter:NAME] use = egg:swift#NAME.
# (container-quotas: X-Container-Meta-Quota-Bytes makes Swift refuse bigger uploads with 413,
# which is how the tests see a store that is full.)
for filter in catch_errors gatekeeper healthcheck proxy-logging listing_formats bulk tempurl \
              copy container-quotas slo dlo symlink; do
    printf '\n[filter:%s]\nuse = egg:swift#%s\n' "$filter" "${filter//-/_}"
done >> "$D/etc/proxy-server.conf"

phase "configs written"
# ---------------------------------------------------------------- rings
# One device "d1" per ring; part_power 6 (64 partitions), 1 replica, min_part_hours 1.
# Same result as, per ring:
#   swift-ring-builder $D/etc/object.builder create 6 1 1
#   swift-ring-builder $D/etc/object.builder add r1z1-127.0.0.1:$OBJECT_PORT/d1 100
#   swift-ring-builder $D/etc/object.builder rebalance
# but done in one Python process: 9 CLI invocations cost ~3 s of interpreter start-up.
"$PY" - "$D/etc" "account:$ACCOUNT_PORT" "container:$CONTAINER_PORT" "object:$OBJECT_PORT" <<'EOF'
import sys
from swift.common.ring import RingBuilder
etc = sys.argv[1]
for spec in sys.argv[2:]:
    name, port = spec.split(':')
    b = RingBuilder(6, 1, 1)          # part_power, replicas, min_part_hours
    b.add_dev({'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': int(port),
               'replication_ip': '127.0.0.1', 'replication_port': int(port),
               'device': 'd1', 'weight': 100, 'meta': ''})
    b.rebalance()
    b.save('%s/%s.builder' % (etc, name))
    b.get_ring().save('%s/%s.ring.gz' % (etc, name))
EOF
[ -s "$D/etc/object.ring.gz" ] || { log "ring build failed"; exit 1; }
fi  # end of fresh-instance setup

phase "rings built"
# ---------------------------------------------------------------- start
# A server is "running" if its pid's cmdline names our config file. (kill -0 is not
# enough: a SIGKILLed server stays a zombie until init reaps it; pids get reused.)
is_running() {
    local pid; pid=$(cat "$D/run/$1.pid" 2>/dev/null) || return 1
    grep -qaF -- "$D/etc/$1-server.conf" "/proc/$pid/cmdline" 2>/dev/null
}
for s in account container object proxy; do
    if is_running "$s"; then
        log "$s-server already running"; continue      # restart mode: only start dead ones
    fi
    # workers=0 => one process, no fork; the pid we record is the server itself.
    # -v => log to stderr too (syslog /dev/log or UDP 127.0.0.1:514 otherwise).
    PYTHON_EGG_CACHE="$D/cache" nohup "$BIN/swift-$s-server" "$D/etc/$s-server.conf" -v \
        </dev/null >>"$D/log/$s.log" 2>&1 &
    echo $! > "$D/run/$s.pid"
done

phase "servers spawned"
if [ -n "${SWIFT_WATCH_PID:-}" ] && ! [ -f "$D/run/watchdog.pid" ]; then
    nohup bash -c 'while kill -0 "$0" 2>/dev/null; do sleep 1; done; exec "$1" "$2"' \
        "$SWIFT_WATCH_PID" "$HERE/stop-swift.sh" "$D" >/dev/null 2>&1 &
    echo $! > "$D/run/watchdog.pid"
fi
# ---------------------------------------------------------------- wait
"$PY" - "$D" "$READY_TIMEOUT" "$PROXY_PORT" "$ACCOUNT_PORT" "$CONTAINER_PORT" "$OBJECT_PORT" <<'EOF' || { log "not ready; logs in $D/log"; tail -n 20 "$D"/log/*.log >&2; SWIFT_KEEP=1 "$HERE/stop-swift.sh" "$D" >&2 || true; exit 1; }
import os, sys, time, urllib.request, urllib.error
d, timeout = sys.argv[1], float(sys.argv[2])
proxy, *backends = sys.argv[3:]
deadline = time.time() + timeout

def alive():  # cmdline of a zombie is empty, so this also catches "died, not reaped"
    for f in os.listdir(os.path.join(d, 'run')):
        if f == 'watchdog.pid':
            continue
        pid = int(open(os.path.join(d, 'run', f)).read())
        try:
            cmd = open('/proc/%d/cmdline' % pid, 'rb').read()
        except OSError:
            cmd = b''
        if b'-server.conf' not in cmd:
            sys.exit('server %s (pid %d) died' % (f, pid))

def ok(url, headers=None, method='GET'):
    try:
        r = urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}, method=method), timeout=2)
        return r
    except (urllib.error.URLError, OSError):
        return None

seen = set()
t0 = time.time()
while time.time() < deadline:
    alive()
    if os.environ.get('SWIFT_TIMING'):
        for p in backends + [proxy]:
            if p not in seen and ok('http://127.0.0.1:%s/healthcheck' % p):
                seen.add(p)
                print('start-swift:   port %s healthy after %.2fs' % (p, time.time() - t0), file=sys.stderr)
    if all(ok('http://127.0.0.1:%s/healthcheck' % p) for p in backends + [proxy]):
        ta = time.time()
        r = ok('http://127.0.0.1:%s/auth/v1.0' % proxy,
               {'X-Auth-User': 'test:tester', 'X-Auth-Key': 'testing'})
        tb = time.time()
        if r and r.status == 200:
            url, tok = r.headers['X-Storage-Url'], r.headers['X-Auth-Token']
            # account HEAD touches proxy -> account server (autocreate on PUT)
            h = ok(url, {'X-Auth-Token': tok}, 'HEAD')
            if os.environ.get('SWIFT_TIMING'):
                print('start-swift:   auth %.2fs, HEAD account %.2fs -> %s' % (tb - ta, time.time() - tb, h and h.status), file=sys.stderr)
            if h:
                sys.exit(0)
    time.sleep(0.1)
sys.exit('timeout after %ss' % timeout)
EOF

log "ready in $(elapsed)s; dir=$D"
cat > "$D/env" <<EOF
export SWIFT_TEST_DIR=$D
export ST_AUTH=http://127.0.0.1:$PROXY_PORT/auth/v1.0
export ST_USER=test:tester
export ST_KEY=testing
EOF
cat "$D/env"
