module github.com/b2cfs/b2cfs

go 1.26.8

require (
	github.com/Backblaze/blazer v0.7.2
	github.com/anishathalye/porcupine v1.3.1
	github.com/hashicorp/golang-lru/v2 v2.0.7
	golang.org/x/sync v0.25.0
)
