# Reads the newest AMI of a layer and prints where it came from.
#
# Against the local emulator, `cargo xtask demo` sets AWS_ENDPOINT_URL, AWS_REGION
# and throwaway credentials; against AWS, the usual credential chain applies.

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

variable "layer" {
  description = "Layer id of the AMI to deploy."
  type        = string
  default     = "demo-web-app"
}

data "immutable_ami" "app" {
  layer = var.layer
}

output "ami_id" {
  value = data.immutable_ami.app.ami_id
}

output "commit" {
  value = data.immutable_ami.app.commit
}

output "lineage" {
  description = "Root layer first, this AMI last."
  value       = [for step in data.immutable_ami.app.lineage : "${step.layer}: ${step.ami_id} (${step.commit})"]
}
