variable "commit" {
  description = "Full git commit of the image sources, e.g. from `git rev-parse HEAD`."
  type        = string
}

# Root layer: built with Packer from the newest Ubuntu image, from the template that
# `immutable-codegen packer --layers images/layers.toml --out images/out` generates
# (this lineage is examples/images in the provider's repository). A relative path
# starts at the directory Terraform runs in; validate and plan check the file exists.
resource "immutable_layered_ami" "base" {
  layer  = "ubuntu-1804"
  commit = var.commit

  source {
    owners = ["099720109477"]
    name   = "ubuntu/images/hvm-ssd/ubuntu-bionic-18.04-amd64-server-*"
  }

  build {
    packer_template = "images/out/ubuntu-1804/packer.json"
  }

  keep = 3
}

# Child layer: built from whatever the base layer's current AMI is. A new base AMI
# makes this layer rebuild too, visibly in the plan.
resource "immutable_layered_ami" "rails" {
  layer  = "rails-base"
  commit = var.commit
  parent = immutable_layered_ami.base.ami_id

  build {
    packer_template = "images/out/rails-base/packer.json"
  }

  keep = 3
}

# Without Packer: an instance from the parent runs the user data, which powers it
# off when done; the stopped instance becomes the AMI.
resource "immutable_layered_ami" "app" {
  layer        = "demo-web-app"
  display_name = "Demo web app"
  commit       = var.commit
  parent       = immutable_layered_ami.rails.ami_id

  build {
    native {
      instance_type = "t3.small"
      user_data     = <<-EOT
        #!/bin/sh
        set -e
        apt-get update && apt-get install -y nginx
        shutdown -h now
      EOT
    }
  }

  tags = {
    Team = "web"
  }

  timeouts {
    create = "45m"
  }
}

output "app_lineage" {
  value = immutable_layered_ami.app.lineage
}
