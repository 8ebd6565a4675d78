# filter_tags given as a list
# summary: Incorrect attribute value type
# at: filter_tags = ["Team"]

data "immutable_ami" "x" {
  layer       = "corpus-base"
  filter_tags = ["Team"]
}
