module github.com/b2cfs/b2cfs

go 1.26.8

require (
	bazil.org/fuse v0.0.0-20230120002735-62a210ff1fd5 // indirect
	github.com/Backblaze/blazer v0.7.2 // indirect
	github.com/anishathalye/porcupine v1.3.1 // indirect
	github.com/hashicorp/golang-lru/v2 v2.0.7 // indirect
	golang.org/x/sync v0.25.0 // indirect
	golang.org/x/sys v0.4.0 // indirect
)
