# An image built by Packer outside Terraform, deployed on a Spot Fleet. Packer's
# manifest post-processor wrote manifest.json next to this configuration; the app
# runs the eu-west-1 AMI of the newest run recorded in it.
resource "immutable_app" "web" {
  name            = "web"
  ami_id          = provider::immutable::manifest_ami(file("${path.module}/manifest.json"), "eu-west-1")
  instance_types  = ["t3.small", "t3a.small"]
  target_capacity = 2
  target_groups   = ["web"]
}
