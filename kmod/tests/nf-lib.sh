# Helpers shared by the hpio-nf test scripts: sourced by nf-forward.sh and
# nf-virtio.sh in the VM (busybox sh) and by virtio-host.sh on the host
# (bash). Check lines read "ok   TAG: ..." / "FAIL TAG: ..."; the callers
# count `passed` and `failed`.

CHECK_TAG=${CHECK_TAG:-nf}
passed=0
failed=0

check() { # check DESCRIPTION COMMAND...
	desc=$1
	shift
	if "$@"; then
		echo "ok   $CHECK_TAG: $desc"
		passed=$((passed + 1))
	else
		echo "FAIL $CHECK_TAG: $desc"
		failed=$((failed + 1))
	fi
}
eq() { # eq WHAT GOT WANT
	if [ "$2" = "$3" ]; then
		echo "ok   $CHECK_TAG: $1 = $3"
		passed=$((passed + 1))
	else
		echo "FAIL $CHECK_TAG: $1 = '$2', expected '$3'"
		failed=$((failed + 1))
	fi
}
# wait_for SECONDS COMMAND...: polls every 0.1 s.
wait_for() {
	n=$(($1 * 10))
	shift
	while [ $n -gt 0 ]; do
		"$@" && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}
# json_num FILE PORT KEY [SUBKEY]: the number after KEY (then after SUBKEY)
# in port PORT's object of a hpio-nf run report (keys as they appear, e.g.
# '"tx":{' '"drops":').
json_num() {
	awk -v port="$2" -v key="$3" -v sub_="${4:-}" '{
		i = index($0, "\"name\":\"" port "\""); if (!i) next
		s = substr($0, i); j = index(s, key); if (!j) next
		s = substr(s, j + length(key))
		if (sub_ != "") { j = index(s, sub_); if (!j) next; s = substr(s, j + length(sub_)) }
		match(s, /^[0-9]+/); print substr(s, 1, RLENGTH); exit }' "$1"
}
# summary_num FILE KEY: a top-level number of a pktgen/dump JSON summary.
summary_num() {
	awk -v key="\"$2\":" '/"event":"summary"/ {
		j = index($0, key); if (!j) next
		s = substr($0, j + length(key)); match(s, /^[0-9]+/)
		print substr(s, 1, RLENGTH); exit }' "$1"
}
