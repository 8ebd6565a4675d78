# commit in upper case
# summary: Invalid Commit
# at: commit = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

data "immutable_ami" "x" {
  layer  = "corpus-base"
  commit = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
}
