# blank owner
# gap: owners elements are not validated: the plan fails on the AWS lookup, at layer
# summary: No Matching AMI

data "immutable_ami" "x" {
  layer  = "corpus-base"
  owners = [""]
}
