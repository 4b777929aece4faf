package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// inspectCommand describes what a build would read at a URL. The Spark-input
// issue fills it in.
func inspectCommand() *cli.Command {
	return &cli.Command{
		Name: "inspect", Usage: "describe the Spark output at a URL: files kept and skipped, schema, rows",
		ArgsUsage: "URL",
		Action: func(c *cli.Context) error {
			return fmt.Errorf("%w: inspect is not implemented yet", errUsage)
		},
	}
}
