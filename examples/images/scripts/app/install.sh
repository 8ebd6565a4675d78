#!/bin/sh
# The demo web app: a Rack app run by Puma under systemd on port 8080.
set -eu

id -u "$APP_USER" >/dev/null 2>&1 || useradd --system --home-dir "$APP_DIR" --shell /usr/sbin/nologin "$APP_USER"
mkdir -p "$APP_DIR"
cp -R /tmp/app/. "$APP_DIR/"
chown -R "$APP_USER:$APP_USER" "$APP_DIR"

cd "$APP_DIR"
sudo -u "$APP_USER" -H bundle config set --local deployment true
sudo -u "$APP_USER" -H bundle config set --local without 'development test'
sudo -u "$APP_USER" -H bundle install --jobs 4

install -m 0644 "$APP_DIR/config/demo-web-app.service" /etc/systemd/system/demo-web-app.service
systemctl daemon-reload
systemctl enable demo-web-app.service
