#!/usr/bin/env bash
# Print the Debian mirror this machine's apt uses (or ONPREM_APT_MIRROR), so
# that test hosts and the sandbox use the same one. Prints nothing if none.
#   apt-mirror.sh            -> main archive URI
#   apt-mirror.sh security   -> security archive URI
set -euo pipefail
suite=bookworm
[ "${1:-}" = security ] && suite=bookworm-security
if [ "$suite" = bookworm ] && [ -n "${ONPREM_APT_MIRROR:-}" ]; then echo "$ONPREM_APT_MIRROR"; exit 0; fi
if [ "$suite" != bookworm ] && [ -n "${ONPREM_APT_SECURITY_MIRROR:-}" ]; then echo "$ONPREM_APT_SECURITY_MIRROR"; exit 0; fi
{
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    awk -v s="$suite" 'BEGIN{RS="";FS="\n"}
      { uris=""; suites="";
        for(i=1;i<=NF;i++){
          if($i ~ /^URIs:/){sub(/^URIs:[ \t]*/,"",$i); uris=$i}
          if($i ~ /^Suites:/){sub(/^Suites:[ \t]*/,"",$i); suites=" " $i " "}
        }
        if(index(suites," " s " ")>0 && uris!=""){split(uris,u," "); print u[1]}
      }' "$f"
  done
  [ -f /etc/apt/sources.list ] && awk -v s="$suite" '$1=="deb" && $3==s {print $2}' /etc/apt/sources.list
} | head -n1
