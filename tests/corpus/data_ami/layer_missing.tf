# no layer
# summary: Missing required argument
# at: data "immutable_ami" "x" {

data "immutable_ami" "x" {
  commit = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
}
