#!/usr/bin/env bash
# Builds STAND-IN base images under the official names node:24-slim, redis:7,
# postgres:18 and nginx:1.28, for machines that can reach Debian's packages and the npm registry
# but no image registry (so `docker pull` and `FROM node:24-slim` cannot fetch the
# real ones). Each stand-in is a Debian bookworm rootfs made with debootstrap,
# plus what the official image provides that the project relies on:
#   node:24-slim  the Node 24 binary from this checkout's node_modules, npm from
#                 the host, a `node` user with uid 1000, CMD ["node"]
#   redis:7       Debian's redis-server and redis-cli (7.0), CMD redis-server
#   postgres:18   Debian's postgresql (15: older than the tag says) and pg_isready, run as
#                 the user postgres; an entrypoint that, as the official one does, makes
#                 the cluster in $PGDATA on first start from POSTGRES_PASSWORD (or
#                 POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_USER and POSTGRES_DB, listens
#                 on every interface, and then runs the command (CMD postgres); no
#                 STOPSIGNAL (docker import cannot set one): Compose gives stop_signal
#   nginx:1.28    Debian's nginx (1.22: older than the tag says), conf.d included
#                 from the http block, logs to stdout/stderr, CMD nginx -g 'daemon off;'
# Every stand-in carries the label auth-cluster.standin=true. An image that already
# exists under one of these names and lacks that label is a real one: it is used as
# it is and never replaced. `--rebuild` replaces existing stand-ins.
#
# Needs root, debootstrap and a running Docker engine. Keeps its rootfs cache in
# $STANDIN_CACHE (default /var/cache/auth-cluster-standin), outside the repository.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cache=${STANDIN_CACHE:-/var/cache/auth-cluster-standin}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
label=auth-cluster.standin
rebuild=false
[ "${1:-}" = "--rebuild" ] && rebuild=true

say() { printf 'standin-images: %s\n' "$*" >&2; }

# Prints "real", "standin" or "missing" for an image name.
kind_of() {
  local value
  if ! value=$(docker image inspect --format "{{ index .Config.Labels \"$label\" }}" "$1" 2>/dev/null); then
    echo missing
  elif [ "$value" = "true" ]; then
    echo standin
  else
    echo real
  fi
}

needed=()
for image in node:24-slim redis:7 postgres:18 nginx:1.28; do
  case "$(kind_of "$image")" in
    real) say "$image: a real image is present; using it" ;;
    standin) if $rebuild; then needed+=("$image"); else say "$image: stand-in already built (--rebuild to redo)"; fi ;;
    missing) needed+=("$image") ;;
  esac
done
[ ${#needed[@]} -gt 0 ] || exit 0

cat >&2 <<EOF

  ######################################################################
  #  BUILDING STAND-IN BASE IMAGES: ${needed[*]}
  #  These are NOT the official images. They are Debian bookworm rootfs
  #  images made here with debootstrap and tagged with the official
  #  names, because this machine cannot pull from any image registry.
  #  Label: $label=true
  ######################################################################

EOF

[ "$(id -u)" -eq 0 ] || { say "needs root (debootstrap, chroot)"; exit 1; }
command -v debootstrap >/dev/null || { say "needs debootstrap: apt-get install -y debootstrap"; exit 1; }

mkdir -p "$cache"
base="$cache/bookworm-minbase"
if [ ! -f "$base/.complete" ]; then
  say "debootstrap bookworm (minbase) into $base"
  rm -rf "$base"
  debootstrap --variant=minbase bookworm "$base" "$mirror" >"$cache/debootstrap.log" 2>&1 \
    || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
  touch "$base/.complete"
fi

work=$(mktemp -d "$cache/stage.XXXXXX")
cleanup() {
  # A chroot may still have /proc mounted if a step failed half-way.
  umount "$work"/rootfs/proc 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

fresh_rootfs() {
  rm -rf "$work/rootfs"
  cp -a "$base" "$work/rootfs"
  rm -f "$work/rootfs/.complete"
  # As in Docker's official Debian images: apt keeps no package cache, so an
  # `apt-get install` layer holds only what it installed.
  cat >"$work/rootfs/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
}

# apt-get inside the staged rootfs, with services kept from starting.
chroot_apt() {
  local rootfs=$work/rootfs
  cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
  chmod +x "$rootfs/usr/sbin/policy-rc.d"
  if ! {
    chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
  } >"$work/apt.log" 2>&1; then
    tail -20 "$work/apt.log" >&2
    return 1
  fi
  rm -f "$rootfs/usr/sbin/policy-rc.d"
}

slim_and_import() {
  local image=$1
  shift
  local rootfs=$work/rootfs
  chroot "$rootfs" apt-get clean
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* "$rootfs"/tmp/*
  : >"$rootfs/etc/resolv.conf"
  tar -C "$rootfs" -c . | docker import \
    --change "LABEL $label=true" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$@" - "$image" >/dev/null
  say "$image: STAND-IN built and tagged"
}

for image in "${needed[@]}"; do
  fresh_rootfs
  rootfs=$work/rootfs
  case "$image" in
    node:24-slim)
      node_bin="$root/node_modules/node/bin/node"
      [ -x "$node_bin" ] || { say "no $node_bin: run npm ci first"; exit 1; }
      version=$("$node_bin" --version)
      case "$version" in v24.*) ;; *) say "$node_bin is $version, not Node 24"; exit 1 ;; esac
      npm_dir=$(npm root -g)/npm
      [ -f "$npm_dir/package.json" ] || { say "no npm found at $npm_dir"; exit 1; }
      install -m 0755 "$node_bin" "$rootfs/usr/local/bin/node"
      mkdir -p "$rootfs/usr/local/lib/node_modules"
      cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
      ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
      ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
      # The official image has a `node` user (uid 1000) that Dockerfiles switch to.
      chroot "$rootfs" groupadd --gid 1000 node
      chroot "$rootfs" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
      extra=()
      # Where this machine reaches the npm registry through a TLS-inspecting proxy, the host
      # trusts an extra CA: give the stand-in the same trust, or `npm ci` in the build fails
      # with SELF_SIGNED_CERT_IN_CHAIN. The official image needs nothing of the kind.
      if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
        install -D -m 0644 "$NODE_EXTRA_CA_CERTS" "$rootfs/usr/local/share/standin-ca.crt"
        extra+=(--change 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/standin-ca.crt')
        say "node:24-slim: the stand-in trusts this host's CA bundle ($NODE_EXTRA_CA_CERTS)"
      fi
      slim_and_import "$image" --change "ENV NODE_VERSION=${version#v}" "${extra[@]}" --change 'CMD ["node"]'
      ;;
    redis:7)
      chroot_apt redis-server redis-tools
      mkdir -p "$rootfs/data"
      chroot "$rootfs" chown redis:redis /data
      # The official image runs without a config file: listening on every interface,
      # protected mode off, in /data.
      slim_and_import "$image" --change 'WORKDIR /data' --change 'USER redis' \
        --change 'CMD ["redis-server", "--protected-mode", "no"]'
      ;;
    postgres:18)
      chroot_apt postgresql
      bin=$(ls -d "$rootfs"/usr/lib/postgresql/*/bin | sort -V | tail -1)
      bin=${bin#"$rootfs"}
      # Debian's package made a cluster of its own (/etc/postgresql, /var/lib/postgresql/N): the
      # official image has none; its entrypoint makes one in $PGDATA on the first start.
      chroot "$rootfs" sh -c 'for v in $(ls /etc/postgresql); do pg_dropcluster "$v" main; done' || true
      mkdir -p "$rootfs/var/lib/postgresql/data" "$rootfs/var/run/postgresql"
      chroot "$rootfs" chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
      chroot "$rootfs" chmod 700 /var/lib/postgresql/data
      cat >"$rootfs/usr/local/bin/docker-entrypoint.sh" <<'ENTRY'
#!/bin/sh
# STAND-IN for the official postgres image's entrypoint: the part this project uses.
set -eu
if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  user=${POSTGRES_USER:-postgres}
  method=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
  if [ -n "${POSTGRES_PASSWORD:-}" ]; then
    pwfile=$(mktemp)
    printf '%s
' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" --auth-local=trust --auth-host="$method" >/dev/null
    rm -f "$pwfile"
  elif [ "$method" = trust ]; then
    initdb -D "$PGDATA" -U "$user" --auth=trust >/dev/null
  else
    echo 'Error: Database is uninitialized and superuser password is not specified.' >&2
    echo '  Set POSTGRES_PASSWORD, or POSTGRES_HOST_AUTH_METHOD=trust to allow all connections without a password.' >&2
    exit 1
  fi
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  echo "host all all all $method" >>"$PGDATA/pg_hba.conf"
  db=${POSTGRES_DB:-$user}
  if [ "$db" != postgres ]; then
    echo "CREATE DATABASE \"$db\"" | postgres --single -D "$PGDATA" -j postgres >/dev/null
  fi
fi
exec "$@"
ENTRY
      chmod 0755 "$rootfs/usr/local/bin/docker-entrypoint.sh"
      slim_and_import "$image" --change "ENV PATH=$bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        --change 'ENV PGDATA=/var/lib/postgresql/data' --change 'USER postgres' \
        --change 'ENTRYPOINT ["docker-entrypoint.sh"]' --change 'CMD ["postgres"]'
      ;;
    nginx:1.28)
      chroot_apt nginx
      rm -f "$rootfs"/etc/nginx/sites-enabled/*
      ln -sf /dev/stdout "$rootfs/var/log/nginx/access.log"
      ln -sf /dev/stderr "$rootfs/var/log/nginx/error.log"
      slim_and_import "$image" --change 'CMD ["nginx", "-g", "daemon off;"]'
      ;;
  esac
done
