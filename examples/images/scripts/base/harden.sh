#!/bin/sh
# Immutable servers are never logged into: no passwords, no root login, and the
# build's SSH key is removed before the image is taken.
set -eu

sed -i 's/^#\?PasswordAuthentication .*/PasswordAuthentication no/' /etc/ssh/sshd_config
sed -i 's/^#\?PermitRootLogin .*/PermitRootLogin no/' /etc/ssh/sshd_config

# Every instance gets fresh host keys and a fresh machine id on first boot.
rm -f /etc/ssh/ssh_host_*
truncate -s 0 /etc/machine-id

# The key Packer used to connect.
rm -f /home/ubuntu/.ssh/authorized_keys
