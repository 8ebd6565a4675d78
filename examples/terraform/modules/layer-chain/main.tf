# A three-layer AMI lineage, base -> role -> app, each layer built from the current
# AMI of the one before. A new commit or new inputs on a layer rebuild it and every
# layer below it; unchanged layers are adopted and nothing is built.

terraform {
  required_version = ">= 1.5"
  required_providers {
    immutable = {
      source = "terraform.local/immutable/immutable"
    }
  }
}

resource "immutable_layered_ami" "base" {
  layer        = var.base.layer
  display_name = var.base.display_name
  commit       = coalesce(var.base.commit, var.commit)
  keep         = var.keep

  source {
    owners = var.source_image.owners
    name   = var.source_image.name
  }

  build {
    native {
      user_data     = var.base.user_data
      instance_type = var.instance_type
    }
  }
}

resource "immutable_layered_ami" "role" {
  layer        = var.role.layer
  display_name = var.role.display_name
  commit       = coalesce(var.role.commit, var.commit)
  parent       = immutable_layered_ami.base.ami_id
  keep         = var.keep

  build {
    native {
      user_data     = var.role.user_data
      instance_type = var.instance_type
    }
  }
}

resource "immutable_layered_ami" "app" {
  layer        = var.app.layer
  display_name = var.app.display_name
  commit       = coalesce(var.app.commit, var.commit)
  parent       = immutable_layered_ami.role.ami_id
  keep         = var.keep
  tags         = var.tags

  build {
    native {
      user_data     = var.app.user_data
      instance_type = var.instance_type
    }
  }
}

# What an app deploys: the app layer's newest AMI at this commit, as the data source
# sees it (the same lookup a deployment in another configuration would make). Read
# after the app layer is built or adopted.
data "immutable_ami" "app" {
  layer  = immutable_layered_ami.app.layer
  commit = immutable_layered_ami.app.commit

  depends_on = [immutable_layered_ami.app]
}
