#!/bin/sh
# Installs a Drover service: binary, systemd unit and configuration file, then enables and
# starts it. Run as root, on the device (agent) or the controller machine (server).
#
#   install.sh agent --broker mqtts://10.0.0.5:8883 --token TOKEN [--node-name NAME] [--binary PATH]
#   install.sh server [--binary PATH]
#
# Options:
#   --binary PATH   the binary to install (default: found next to this script, in
#                   target/release of a checkout, or on PATH)
#   --broker URL    agent: the controller's broker, written to /etc/drover/agent.toml
#   --token TOKEN   agent: join token for the first start (drover token create); the file
#                   is then 0600
#   --node-name N   agent: node name (default: the hostname)
#   --label K=V     agent: node label, repeatable
#   --root DIR      install below DIR and do not touch systemd (for packaging and tests)
#   --no-enable     install only; do not enable or start the service
# An existing configuration file is kept.
set -eu

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
[ $# -ge 1 ] || usage 2
role=$1; shift
case "$role" in
  agent) binary_name=drover-agent; unit=drover-agent.service; config=agent.toml ;;
  server) binary_name=drover; unit=drover-server.service; config=server.toml ;;
  -h|--help) usage 0 ;;
  *) echo "install.sh: the first argument is agent or server" >&2; usage 2 ;;
esac

binary=; broker=; token=; node_name=; labels=; root=; enable=yes
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary=$2; shift 2 ;;
    --broker) broker=$2; shift 2 ;;
    --token) token=$2; shift 2 ;;
    --node-name) node_name=$2; shift 2 ;;
    --label) labels="$labels \"$2\","; shift 2 ;;
    --root) root=$2; enable=no; shift 2 ;;
    --no-enable) enable=no; shift ;;
    -h|--help) usage 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage 2 ;;
  esac
done

here=$(cd "$(dirname "$0")" && pwd)
if [ -z "$binary" ]; then
  for candidate in "$here/$binary_name" "$here/../target/release/$binary_name" "$(command -v "$binary_name" || true)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then binary=$candidate; break; fi
  done
fi
[ -n "$binary" ] && [ -x "$binary" ] || { echo "install.sh: no $binary_name binary found; pass --binary PATH" >&2; exit 1; }
unit_file=
for candidate in "$here/$unit" "$here/../systemd/$unit"; do
  if [ -f "$candidate" ]; then unit_file=$candidate; break; fi
done
[ -n "$unit_file" ] || { echo "install.sh: $unit not found next to install.sh or in ../systemd" >&2; exit 1; }
if [ "$role" = agent ] && [ -z "$broker" ] && [ ! -f "$root/etc/drover/$config" ]; then
  echo "install.sh: the agent needs --broker mqtts://HOST:8883 (the controller's broker) and --token (drover token create)" >&2
  exit 2
fi

install -D -m 0755 "$binary" "$root/usr/local/bin/$binary_name"
install -D -m 0644 "$unit_file" "$root/etc/systemd/system/$unit"
if [ ! -f "$root/etc/drover/$config" ]; then
  mkdir -p "$root/etc/drover"
  {
    echo "# Drover $role configuration: keys are the long flag names (drover-agent --help)."
    echo "# Precedence: flags > DROVER_* environment > this file > defaults."
    [ -n "$broker" ] && echo "broker = \"$broker\""
    [ -n "$token" ] && echo "token = \"$token\""
    [ -n "$node_name" ] && echo "node-name = \"$node_name\""
    [ -n "$labels" ] && echo "label = [${labels%,} ]"
    true
  } >"$root/etc/drover/$config"
  if [ -n "$token" ]; then
    chmod 0600 "$root/etc/drover/$config"
  else
    chmod 0644 "$root/etc/drover/$config"
  fi
fi
echo "installed $root/usr/local/bin/$binary_name, $root/etc/systemd/system/$unit, $root/etc/drover/$config"

if [ "$enable" = yes ]; then
  systemctl daemon-reload
  systemctl enable --now "$unit"
  systemctl --no-pager --lines=0 status "$unit" || true
fi
