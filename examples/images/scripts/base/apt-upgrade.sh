#!/bin/sh
# Base image: current packages, then the tools every layer above expects.
set -eu
export DEBIAN_FRONTEND=noninteractive

# cloud-init may still hold the apt lock on first boot.
while fuser /var/lib/dpkg/lock-frontend >/dev/null 2>&1; do sleep 2; done

apt-get update -q
apt-get -y -q -o Dpkg::Options::=--force-confold dist-upgrade
apt-get -y -q install --no-install-recommends ca-certificates curl gnupg unattended-upgrades
apt-get -y -q autoremove
apt-get clean
rm -rf /var/lib/apt/lists/*
