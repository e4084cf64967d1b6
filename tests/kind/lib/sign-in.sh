#!/bin/sh
# A browser's sign-in, in POSIX sh for the curl pod (busybox): start at URL, follow every
# redirect, fill the provider's login form with USER (any password) and submit its consent
# form, until a page that is neither. Prints "STATUS <code>" and that page's body.
# -k: the kind suite's gateway has a self-signed certificate.
#   kubectl exec -i deploy/curl -- sh -s URL USER < sign-in.sh
set -eu
url="$1"
user="$2"
jar="$(mktemp)"
page="$(mktemp)"
trap 'rm -f "$jar" "$page"' EXIT

origin_of() { printf '%s' "$1" | sed -n 's#^\(https*://[^/]*\).*#\1#p'; }

method=GET
data=""
hops=0
while [ "$hops" -lt 15 ]; do
  hops=$((hops + 1))
  if [ "$method" = POST ]; then
    out="$(curl -k -sS -o "$page" -c "$jar" -b "$jar" -H 'accept: text/html' \
      -w '%{http_code} %{redirect_url}' --data "$data" "$url")"
  else
    out="$(curl -k -sS -o "$page" -c "$jar" -b "$jar" -H 'accept: text/html' \
      -w '%{http_code} %{redirect_url}' "$url")"
  fi
  code="${out%% *}"
  next="${out#* }"
  echo "hop $hops: $method $url -> $code" >&2
  method=GET
  data=""
  case "$code" in
    301|302|303|307|308)
      url="$next"
      continue
      ;;
  esac
  action="$(sed -n 's/.*<form[^>]*action="\([^"]*\)".*/\1/p' "$page" | head -n 1)"
  prompt="$(sed -n 's/.*name="prompt" value="\([^"]*\)".*/\1/p' "$page" | head -n 1)"
  if [ "$code" != 200 ] || [ -z "$action" ] || [ -z "$prompt" ]; then
    break
  fi
  case "$action" in
    /*) url="$(origin_of "$url")$action" ;;
    http*) url="$action" ;;
    *) echo "sign-in: cannot follow form action $action" >&2; break ;;
  esac
  method=POST
  case "$prompt" in
    login) data="prompt=login&login=$user&password=any" ;;
    consent) data="prompt=consent" ;;
    *) echo "sign-in: unknown prompt $prompt" >&2; break ;;
  esac
done
echo "STATUS $code"
cat "$page"
echo
