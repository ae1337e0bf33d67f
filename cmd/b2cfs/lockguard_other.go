//go:build !linux

package main

import (
	"os"
	"syscall"
)

// Without Linux's subreaper and /proc the guard signals the command only.

func guardExecutable() (string, error) { return os.Executable() }

func setSubreaper() {}

func guardSysProcAttr() *syscall.SysProcAttr { return nil }

func descendants(root int) []int { return nil }
