# Builds the AMI lineage ubuntu-1804 -> rails-base -> demo-web-app with the native
# builder (no Packer) and prints the app AMI and where it came from.
#
#   terraform apply -var commit=$(git rev-parse HEAD)
#
# Against the local emulator, `cargo xtask demo-layers` sets AWS_ENDPOINT_URL,
# AWS_REGION and throwaway credentials, and registers a stand-in upstream image.

terraform {
  required_version = ">= 1.5"
  required_providers {
    immutable = {
      source = "terraform.local/immutable/immutable"
    }
  }
}

provider "immutable" {
  default_tags = {
    Project = "demo"
  }
}

variable "commit" {
  description = "Full git commit of the image sources."
  type        = string
}

variable "source_owners" {
  description = "Owners of the upstream image (Canonical by default)."
  type        = list(string)
  default     = ["099720109477"]
}

variable "source_name" {
  description = "Name pattern of the upstream image."
  type        = string
  default     = "ubuntu/images/hvm-ssd/ubuntu-bionic-18.04-amd64-server-*"
}

module "images" {
  source = "../modules/layer-chain"

  commit       = var.commit
  source_image = { owners = var.source_owners, name = var.source_name }

  base = {
    layer        = "ubuntu-1804"
    display_name = "Ubuntu 18.04"
    user_data    = "#!/bin/sh\nset -e\napt-get update && apt-get -y upgrade\nshutdown -h now\n"
  }
  role = {
    layer        = "rails-base"
    display_name = "Rails base"
    user_data    = "#!/bin/sh\nset -e\napt-get update && apt-get install -y ruby-full nginx\nshutdown -h now\n"
  }
  app = {
    layer        = "demo-web-app"
    display_name = "Demo web app"
    user_data    = "#!/bin/sh\nset -e\nmkdir -p /srv/app && echo ok > /srv/app/health\nshutdown -h now\n"
  }
  keep = 2
}

output "ami_id" {
  value = module.images.app_ami_id
}

output "lineage" {
  description = "Root layer first, this AMI last."
  value       = [for step in module.images.lineage : "${step.layer}: ${step.ami_id} (${step.commit})"]
}
