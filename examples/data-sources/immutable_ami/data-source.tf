# The newest AMI of the app layer, and where it came from.
data "immutable_ami" "app" {
  layer = "demo-web-app"
}

output "app_ami" {
  value = data.immutable_ami.app.ami_id
}

# [{ layer = "ubuntu-1804", ami_id = "ami-…", commit = "…" }, …, { layer = "demo-web-app", … }]
output "app_lineage" {
  value = data.immutable_ami.app.lineage
}
