output "app_ami_id" {
  description = "The AMI to deploy: the app layer's current AMI."
  value       = data.immutable_ami.app.ami_id
}

output "lineage" {
  description = "Root layer first, the app AMI last: `{ layer, ami_id, commit }` each."
  value       = data.immutable_ami.app.lineage
}

output "layer_ami_ids" {
  description = "The current AMI of each layer."
  value = {
    (immutable_layered_ami.base.layer) = immutable_layered_ami.base.ami_id
    (immutable_layered_ami.role.layer) = immutable_layered_ami.role.ami_id
    (immutable_layered_ami.app.layer)  = immutable_layered_ami.app.ami_id
  }
}
