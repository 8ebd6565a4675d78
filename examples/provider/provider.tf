terraform {
  required_providers {
    immutable = {
      source = "terraform.local/immutable/immutable"
    }
  }
}

provider "immutable" {
  region = "eu-west-1"

  default_tags = {
    Project = "shop"
  }
}
