#!/bin/bash
# Runs the pjdfstest POSIX suite against a b2cfs mount on the built-in B2
# emulator. The suite is not part of this repository; build it from its
# public source, outside the checkout:
#
#   apt-get install -y autoconf automake gcc make perl
#   git clone https://github.com/pjd/pjdfstest /opt/pjdfstest
#   cd /opt/pjdfstest && autoreconf -ifs && ./configure && make pjdfstest
#
#   usage: integration/pjdfstest.sh B2CFS_BINARY OUTPUT_PREFIX
#   e.g.   go build -o /tmp/b2cfs ./cmd/b2cfs && integration/pjdfstest.sh /tmp/b2cfs /tmp/pjd/run
#
# Writes PREFIX-<dir>.txt (prove -rv output) for each test directory,
# PREFIX-summary.md (a table), PREFIX-emu.log and PREFIX-mount.log.
# Environment: PJD (the pjdfstest checkout, default /opt/pjdfstest),
# MNT (mount point, default /tmp/pjd/mnt), PORT (emulator port, default
# 18787), TIMEOUT (seconds per directory, default 900), DIRS (test
# directories, default the ten below). Must run as root: pjdfstest
# switches uid and gid. What fails and why: README, "POSIX conformance".
set -u
BIN=${1:?usage: run.sh B2CFS_BINARY OUTPUT_PREFIX}
PREFIX=${2:?usage: run.sh B2CFS_BINARY OUTPUT_PREFIX}
BIN=$(readlink -f "$BIN")
PJD=${PJD:-/opt/pjdfstest}
MNT=${MNT:-/tmp/pjd/mnt}
PORT=${PORT:-18787}
TIMEOUT=${TIMEOUT:-900}
DIRS=${DIRS:-"chmod mkdir open rename rmdir symlink truncate ftruncate unlink utimensat"}
BUCKET=pjdfs-bucket
GROUP=pjd
CACHE=$PREFIX-cache

[ "$(id -u)" = 0 ] || { echo "run.sh: must run as root" >&2; exit 1; }
[ -x "$PJD/pjdfstest" ] || { echo "run.sh: $PJD/pjdfstest not built" >&2; exit 1; }
if mountpoint -q "$MNT"; then echo "run.sh: $MNT is already a mount point" >&2; exit 1; fi
if ss -ltn 2>/dev/null | awk '{print $4}' | grep -q ":$PORT\$"; then
	echo "run.sh: port $PORT busy (set PORT=...)" >&2; exit 1
fi
mkdir -p "$MNT" "$(dirname "$PREFIX")"
rm -rf "$CACHE"

EMU_PID= MOUNT_PID=
cleanup() {
	cd /
	if mountpoint -q "$MNT"; then fusermount3 -u -z "$MNT"; fi
	if [ -n "$MOUNT_PID" ] && kill -0 "$MOUNT_PID" 2>/dev/null; then
		kill "$MOUNT_PID"; for _ in $(seq 20); do kill -0 "$MOUNT_PID" 2>/dev/null || break; sleep 0.5; done
		kill -9 "$MOUNT_PID" 2>/dev/null
	fi
	if [ -n "$EMU_PID" ] && kill -0 "$EMU_PID" 2>/dev/null; then kill "$EMU_PID"; wait "$EMU_PID" 2>/dev/null; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$BIN" emulator -listen 127.0.0.1:$PORT -bucket $BUCKET > "$PREFIX-emu.log" 2>&1 &
EMU_PID=$!
for _ in $(seq 50); do grep -q 'serving at' "$PREFIX-emu.log" && break; sleep 0.2; done
grep -q 'serving at' "$PREFIX-emu.log" || { echo "run.sh: emulator did not start" >&2; cat "$PREFIX-emu.log" >&2; exit 1; }

B2_APPLICATION_KEY_ID=b2cfs-emu-key-id B2_APPLICATION_KEY=b2cfs-emu-key \
	"$BIN" mount -endpoint http://127.0.0.1:$PORT -o allow_other,cache_dir=$CACHE \
	$BUCKET/$GROUP "$MNT" > "$PREFIX-mount.log" 2>&1 &
MOUNT_PID=$!
for _ in $(seq 100); do mountpoint -q "$MNT" && break; sleep 0.2; done
mountpoint -q "$MNT" || { echo "run.sh: mount did not come up" >&2; cat "$PREFIX-mount.log" >&2; exit 1; }

SUM=$PREFIX-summary.md
{
	echo "binary: $BIN ($(date -u +%FT%TZ))"
	echo
	echo "| dir | test files | failed files | subtests | failed subtests | note |"
	echo "| --- | ---: | ---: | ---: | ---: | --- |"
} > "$SUM"
for d in $DIRS; do
	out=$PREFIX-$d.txt
	start=$(date +%s)
	( cd "$MNT" && mkdir -p "run-$d" && cd "run-$d" && exec timeout "$TIMEOUT" prove -rv --timer "$PJD/tests/$d" ) > "$out" 2>&1
	rc=$?
	secs=$(( $(date +%s) - start ))
	nfiles=$(find "$PJD/tests/$d" -name '*.t' | wc -l)
	# From prove's output: per-file lines "Failed x/y subtests" or "ok",
	# and the closing "Files=N, Tests=M".
	perl -e '
		my ($d, $nfiles, $rc, $secs) = @ARGV; my ($cur, %tests, %fail, %bad);
		while (<STDIN>) {
			if (m{^(?:\[[\d:]+\] )?(/\S+\.t) \.\.}) { $cur = $1; $tests{$cur} //= 0; $fail{$cur} //= 0; next }
			next unless defined $cur;
			if (/^ok \d+/)       { $tests{$cur}++ }
			elsif (/^not ok \d+/) { $tests{$cur}++; $fail{$cur}++ unless /# TODO/ }
			elsif (/^(Dubious|Parse errors|No subtests run|Bailout)/) { $bad{$cur} = 1 }
		}
		my @f = keys %tests; my ($t, $ft, $ff) = (0, 0, 0);
		for (@f) { $t += $tests{$_}; $ft += $fail{$_}; $ff++ if $fail{$_} || $bad{$_} }
		my $note = $rc == 124 ? "TIMEOUT after ${secs}s (" . scalar(@f) . " files started)" : "${secs}s, prove rc $rc";
		printf "| %s | %d | %d | %d | %d | %s |\n", $d, $nfiles, $ff, $t, $ft, $note;
	' "$d" "$nfiles" "$rc" "$secs" < "$out" >> "$SUM"
	tail -1 "$SUM"
done
{
	echo
	echo "mount still up at end: $(mountpoint -q "$MNT" && echo yes || echo NO)"
} >> "$SUM"
cat "$SUM"
