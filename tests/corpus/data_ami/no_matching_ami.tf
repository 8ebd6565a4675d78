# a layer no AMI carries
# summary: No Matching AMI
# at: layer = "no-such-layer"

data "immutable_ami" "x" {
  layer = "no-such-layer"
}
