#!/bin/sh
# Ruby, Bundler and the native libraries Rails apps commonly build against.
set -eu
export DEBIAN_FRONTEND=noninteractive

apt-get update -q
apt-get -y -q install --no-install-recommends \
    ruby-full build-essential zlib1g-dev libpq-dev libsqlite3-dev nodejs tzdata
install -m 0644 /tmp/gemrc /etc/gemrc
gem install bundler -v '~> 2.3' --no-document
apt-get clean
rm -rf /var/lib/apt/lists/*
