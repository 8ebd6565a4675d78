# An image built by Packer outside Terraform (its manifest post-processor writes
# manifest.json), deployed on a Spot Fleet.
resource "immutable_app" "web" {
  name            = "web"
  ami_id          = provider::immutable::manifest_ami(file("${path.module}/manifest.json"), "eu-west-1")
  instance_types  = ["t3.small", "t3a.small"]
  target_capacity = 2
  target_groups   = ["web"]
}
