package main

import (
	"errors"
	"flag"
	"fmt"
)

// newFlagSet makes a flag set whose --help prints the command's purpose.
func newFlagSet(name, purpose string, env *environment) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: oneid %s [flags]\n\n%s\n\nFlags:\n", name, purpose)
		fs.PrintDefaults()
	}
	return fs
}

// errHelp ends a command that only printed its help.
var errHelp = errors.New("help requested")

func flagErr(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return errHelp
	}
	return err
}
