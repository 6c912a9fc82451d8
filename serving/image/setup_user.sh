#!/usr/bin/env bash
# The image's runtime user: `ray`, uid/gid 1000, home /home/ray, shell /bin/bash.
#   bash setup_user.sh            # in the image build (serving/Dockerfile)
#   bash setup_user.sh DIR        # on DIR/etc/{passwd,group,...} (shadow's --prefix; the tests)
#
# Why not just `useradd --uid 1000 ray`: the base (the Neuron DLC) is FROM ubuntu:24.04, which
# already has `ubuntu:x:1000:1000` (Ubuntu's OCI images ship it since 23.04), and useradd stops with
# "UID 1000 is not unique". uid 1000 is fixed by the contract -- the Dockerfile's `USER 1000` and
# the pods' securityContext -- and Ray, Hugging Face and Neuron look the user up by uid (home,
# cache dirs), so exactly one passwd entry must own uid 1000. Whatever holds uid/gid 1000 in the
# base is therefore renamed to ray (nothing else in the base runs as it); if nothing does, ray is
# created. Its supplementary groups (ubuntu's adm, sudo, ...) are dropped: the server needs none.
set -euo pipefail
PREFIX="${1:-}"
NAME=ray
ID=1000
HOME_DIR=/home/ray
opts=()
[ -n "$PREFIX" ] && opts=(--prefix "$PREFIX")
etc="${PREFIX%/}/etc"

name_of() {  # name_of FILE ID -> the entry whose 3rd field is ID (empty if none)
    awk -F: -v id="$2" '$3 == id { print $1; exit }' "$1"
}
id_of() {  # id_of FILE NAME -> the id of entry NAME (empty if none)
    awk -F: -v n="$2" '$1 == n { print $3; exit }' "$1"
}

for file in passwd group; do
    other="$(id_of "$etc/$file" "$NAME")"
    if [ -n "$other" ] && [ "$other" != "$ID" ]; then
        echo "setup_user.sh: $etc/$file already has $NAME with id $other, not $ID; the base image changed" >&2
        exit 1
    fi
done

group="$(name_of "$etc/group" "$ID")"
if [ -z "$group" ]; then
    groupadd "${opts[@]}" --gid "$ID" "$NAME"
elif [ "$group" != "$NAME" ]; then
    groupmod "${opts[@]}" --new-name "$NAME" "$group"
fi

user="$(name_of "$etc/passwd" "$ID")"
if [ -z "$user" ]; then
    useradd "${opts[@]}" --uid "$ID" --gid "$ID" --home-dir "$HOME_DIR" --no-create-home --shell /bin/bash "$NAME"
else
    if [ "$user" != "$NAME" ]; then
        usermod "${opts[@]}" --login "$NAME" "$user"
    fi
    usermod "${opts[@]}" --gid "$ID" --groups "" --home "$HOME_DIR" --shell /bin/bash --comment "Ray" "$NAME"
fi

# The home directory itself (the base's /home/ubuntu holds only skeleton dotfiles; a fresh one is
# simpler than moving it, and under --prefix usermod --move-home would not stay inside DIR).
home="${PREFIX%/}$HOME_DIR"
mkdir -p "$home"
chown "$ID:$ID" "$home"
chmod 0750 "$home"
