package main

import (
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lockstep-data/lockstep/publish"
)

func newApp() *cli.App {
	bundleFlag := &cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Usage: "bundle name (may be omitted when the spec has one bundle)"}
	specFlag := &cli.StringFlag{Name: "spec", Aliases: []string{"s"}, Usage: "bundle spec `FILE` (YAML)", Value: "lockstep.yaml", EnvVars: []string{"LOCKSTEP_SPEC"}}
	memoryFlag := &cli.StringFlag{Name: "memory", EnvVars: []string{"LOCKSTEP_MEMORY"}, Usage: "memory `SIZE` for sorting, shared by all the bundle's sorted assets (e.g. 2GiB; default: the spec's memory:, else 512MiB); larger inputs spill to disk"}
	stageFlag := &cli.StringFlag{Name: "stage", Usage: "`DIR` for staged releases", Value: ".lockstep/stage", EnvVars: []string{"LOCKSTEP_STAGE"}}
	channelFlag := &cli.StringFlag{Name: "channel", Aliases: []string{"c"}, Usage: "channel `NAME`", Value: "production"}
	reasonFlag := &cli.StringFlag{Name: "reason", Usage: "why, recorded in the channel log"}
	overrideFlag := &cli.StringSliceFlag{Name: "override", Usage: "push the failed `CHECK` through (repeatable; needs --reason, recorded in the manifest and the channel log); `plan` lists the checks"}
	buildReason := &cli.StringFlag{Name: "reason", Usage: "why the --override checks are pushed through, recorded in the manifest"}
	anyBundle := &cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Usage: "bundle name (default: every bundle)"}
	needBundle := &cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Usage: "bundle name (required)"}
	output := &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "text or json", Value: "text"}
	keepStage := &cli.BoolFlag{Name: "keep-stage", Usage: "keep the staged release folder after publishing it (by default it is removed then; verify --repair --from can use kept ones)"}
	verifyExisting := &cli.BoolFlag{Name: "verify-existing", Usage: "hash every blob already in the store before reusing it (default: check its size); a corrupt one is replaced from this build"}
	app := &cli.App{
		Name:                 "lockstep",
		Usage:                "build server data from Spark output, publish it as immutable releases, move channels, pull",
		Version:              version,
		EnableBashCompletion: true,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "store", Usage: "release store `URL` (file://, s3://, gs://, azblob://, mem://)", Value: "file://./.lockstep/store", EnvVars: []string{"LOCKSTEP_STORE"}},
			&cli.StringFlag{Name: "log-format", Usage: "text or json", Value: "text", EnvVars: []string{"LOCKSTEP_LOG_FORMAT"}},
			&cli.StringFlag{Name: "log-level", Usage: "debug, info, warn or error", Value: "warn", EnvVars: []string{"LOCKSTEP_LOG_LEVEL"}},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "text or json, for every command", Value: "text", EnvVars: []string{"LOCKSTEP_OUTPUT"}},
			cli.HelpFlag, // urfave/cli adds it only without a help command of the app's own
		}, profileFlags()...),

		Commands: []*cli.Command{
			{
				Name: "build", Usage: "build a bundle into a staged release folder (writes nothing to the store)",
				Flags:  []cli.Flag{specFlag, bundleFlag, stageFlag, memoryFlag, output, overrideFlag, buildReason},
				Action: checkFirst(checkBuildFlags, withStore(storeIfExists, runBuild)),
			},
			{
				Name: "plan", Usage: "a dry run: build in a temporary folder, run the checks, and compare with what the channel serves (writes nothing to the store; exit 3 when a gate would fail)",
				Flags:  []cli.Flag{specFlag, bundleFlag, stageFlag, memoryFlag, output, overrideFlag, buildReason},
				Action: checkFirst(checkBuildFlags, withStore(storeIfExists, runPlan)),
			},
			{
				Name: "publish", Usage: "publish a staged release folder, or build and publish a bundle (no channel moves)",
				ArgsUsage: "[STAGED_DIR]",
				Flags:     []cli.Flag{specFlag, bundleFlag, stageFlag, memoryFlag, output, &cli.IntFlag{Name: "parallel", Value: 4, Usage: "blob uploads at once"}, verifyExisting, keepStage, lockWaitFlag(writerLockWait), overrideFlag, buildReason, signKeyFlag},
				Action:    checkFirst(checkBuildFlags, withStore(storeCreate, runPublish)),
			},
			{
				Name: "promote", Usage: "point a channel at a published release",
				Flags:  moveFlags(&cli.StringFlag{Name: "release", Aliases: []string{"r"}, Usage: "release `ID` (required)"}),
				Action: withEnv(move(publish.Promote, "release")),
			},
			{
				Name: "rollback", Usage: "point a channel back at an earlier release (a new log entry; history is kept)",
				Flags:  moveFlags(&cli.StringFlag{Name: "to", Usage: "release `ID` (default: the release before the current one)"}),
				Action: withEnv(move(publish.Rollback, "to")),
			},
			{
				Name: "republish", Usage: "point a channel at an older release again, after checking all its blobs exist",
				Flags:  moveFlags(&cli.StringFlag{Name: "release", Aliases: []string{"r"}, Usage: "release `ID` (required)"}),
				Action: withEnv(move(republish, "release")),
			},
			{
				Name: "run", Usage: "build, publish and promote a bundle: what cron, Airflow and CI call",
				Flags:  append([]cli.Flag{specFlag, bundleFlag, stageFlag, memoryFlag, reasonFlag, output, &cli.IntFlag{Name: "parallel", Value: 4, Usage: "blob uploads at once"}, verifyExisting, keepStage, lockWaitFlag(writerLockWait), overrideFlag, signKeyFlag}, eventsFlags()...),
				Action: checkFirst(checkBuildFlags, withStore(storeCreate, runRun)),
			},
			{
				Name: "pull", Usage: "download the release a channel names, verify every byte, and swap it in",
				Flags: append([]cli.Flag{needBundle, channelFlag, output,
					&cli.StringFlag{Name: "dest", Aliases: []string{"d"}, Usage: "serving `DIR`: DIR/current points at the release (required)"},
					&cli.StringFlag{Name: "release", Aliases: []string{"r"}, Usage: "pull this release instead of the channel's"},
					&cli.IntFlag{Name: "keep", Value: 3, Usage: "releases kept in DIR, current included"},
					&cli.StringFlag{Name: "server-version", EnvVars: []string{"LOCKSTEP_SERVER_VERSION"}, Usage: "this box's server `VERSION`: refuse (exit 5) a release whose requires.server does not admit it"},
					&cli.StringSliceFlag{Name: "trust-key", EnvVars: []string{"LOCKSTEP_TRUST_KEYS"}, Usage: "refuse (exit 5) a channel entry or manifest not signed by one of these ed25519 public keys (`FILE` or env:VAR; repeatable, for rotation), and a head older than one this DIR accepted"},
				}, pullFlags()...),
				Action: checkFirst(checkPull, func(c *cli.Context) error {
					if c.Bool("rollback") {
						return runRollbackLocal(c)
					}
					return withEnv(runPull)(c)
				}),
			},
			{
				Name: "schedule", Usage: "a daemon: run each bundle on the cron of its spec (schedule:, timezone:, jitter:, missed:), never two runs of one bundle at once",
				Flags: append([]cli.Flag{specFlag, stageFlag, memoryFlag, signKeyFlag, lockWaitFlag(writerLockWait),
					&cli.StringSliceFlag{Name: "bundle", Aliases: []string{"b"}, Usage: "run only these bundles (repeatable; default: every bundle with a schedule)"},
					&cli.StringFlag{Name: "listen", Usage: "serve /healthz and Prometheus /metrics on `ADDR` (such as 127.0.0.1:9465)"},
					&cli.DurationFlag{Name: "grace", Value: 5 * time.Minute, Usage: "on SIGTERM, how long a run in flight may take to finish before it is abandoned (leaving nothing partial)"},
					&cli.IntFlag{Name: "parallel", Value: 4, Usage: "blob uploads at once"}}, eventsFlags()...),
				Action: withStore(storeCreate, runSchedule),
			},
			{
				Name: "consume", Usage: "a daemon: build, publish and promote on the rebuild events of a Kafka topic (docs/events.md); poison events go to a dead-letter topic",
				Flags: append([]cli.Flag{specFlag, stageFlag, memoryFlag, signKeyFlag, lockWaitFlag(writerLockWait),
					&cli.StringFlag{Name: "topic", Usage: "the rebuild events' `TOPIC` (required)"},
					&cli.StringFlag{Name: "group", Usage: "the consumer `GROUP` (required)"},
					&cli.StringFlag{Name: "dead-letter-topic", Usage: "where poison events go, with their error (default: TOPIC.dlq)"},
					&cli.StringFlag{Name: "listen", Usage: "serve /healthz and Prometheus /metrics on `ADDR`"},
					&cli.DurationFlag{Name: "lag-interval", Value: 5 * time.Second, Usage: "how often /metrics measures the group's lag per partition"},
					&cli.IntFlag{Name: "parallel", Value: 4, Usage: "blob uploads at once"}}, eventsFlags()...),
				Action: withStore(storeCreate, runConsume),
			},
			{
				Name: "rebuild", Usage: "build a published release again from its manifest alone, and prove every asset byte-identical (or say where each differs)",
				Flags: []cli.Flag{needBundle, &cli.StringFlag{Name: "release", Aliases: []string{"r"}, Usage: "release `ID` (required)"}, stageFlag, output,
					&cli.BoolFlag{Name: "allow-version-change", Usage: "rebuild although the release was built by another lockstep version"}},
				Action: withEnv(runRebuild),
			},
			{
				Name: "keygen", Usage: "make an ed25519 key pair for signing: NAME.key (private) and NAME.pub", ArgsUsage: "NAME",
				Flags:  []cli.Flag{output},
				Action: runKeygen,
			},
			{
				Name: "sign", Usage: "sign a published release's manifest with --sign-key (an unsigned release, or a new key while keys rotate)",
				Flags: []cli.Flag{needBundle, &cli.StringFlag{Name: "release", Aliases: []string{"r"}, Usage: "release `ID` (required)"}, signKeyFlag, output,
					&cli.StringSliceFlag{Name: "trust-key", Usage: "sign only if one of these public keys (`FILE` or env:VAR) already signed the manifest: while keys rotate, the new key vouches for nothing the old one did not"}},
				Action: withEnv(runSign),
			},
			{
				Name: "ls", Usage: "list bundles, releases, and what each channel serves",
				Flags:  []cli.Flag{anyBundle, output},
				Action: withEnv(runLs),
			},
			{
				Name: "show", Usage: "show a release's manifest", ArgsUsage: "RELEASE",
				Flags:  []cli.Flag{needBundle, output},
				Action: withEnv(runShow),
			},
			{
				Name: "history", Usage: "show a channel's log, oldest first",
				Flags:  []cli.Flag{needBundle, channelFlag, output},
				Action: withEnv(runHistory),
			},
			{
				Name: "query", Usage: "read an asset of a pulled release (--dest) or a published one (--bundle, --release)",
				ArgsUsage: "ASSET [KEY|PREFIX|IP]",
				Flags: []cli.Flag{&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Usage: "bundle of --release"}, output,
					&cli.StringFlag{Name: "dest", Aliases: []string{"d"}, Usage: "serving `DIR` of a pulled release"},
					&cli.StringFlag{Name: "release", Aliases: []string{"r"}, Usage: "published release `ID`"},
					&cli.IntFlag{Name: "limit", Value: 5, Usage: "rows to show"},
				},
				Action: withStore(storeIfExists, runQuery), // --dest needs no store
			},
			{
				Name: "diff", Usage: "compare two releases: assets added, removed and changed; rows, bytes, schema",
				ArgsUsage: "R1 R2", Flags: []cli.Flag{needBundle, output},
				Action: withEnv(runDiff),
			},
			{
				Name: "verify", Usage: "re-hash blobs against their manifests; report missing and corrupt blobs and what they break",
				ArgsUsage: "[RELEASE...]",
				Flags: []cli.Flag{anyBundle, output,
					&cli.BoolFlag{Name: "all", Usage: "every release of every bundle (or of --bundle)"},
					&cli.BoolFlag{Name: "deep", Usage: "also open each asset with its format's reader"},
					&cli.BoolFlag{Name: "repair", Usage: "put back missing and corrupt blobs from good local copies (see --from), then verify again"},
					&cli.StringSliceFlag{Name: "from", Usage: "`DIR` of staged or pulled releases to repair from (repeatable; default: .lockstep/stage)"},
				},
				Action: withEnv(runVerify),
			},
			{
				Name: "gc", Usage: "delete releases no channel needs and blobs no kept release uses (channel logs are kept)",
				Flags: []cli.Flag{output,
					&cli.IntFlag{Name: "keep-releases", Value: 10, Usage: "keep the newest `N` releases of each bundle"},
					&cli.IntFlag{Name: "keep-history", Value: 10, Usage: "keep releases named by the last `N` entries of each channel"},
					&cli.DurationFlag{Name: "grace", Value: 24 * time.Hour, Usage: "keep anything younger than this: it may belong to a publish in flight"},
					&cli.BoolFlag{Name: "dry-run", Usage: "say what would go, delete nothing"},
					lockWaitFlag(gcLockWait),
				},
				Action: withEnv(runGC),
			},
			inspectCommand(),
			validateCommand(specFlag, bundleFlag, output),
			completionCommand(),
			statusCommand(output),
			initCommand(),
			{
				Name: "help", Aliases: []string{"h"}, Usage: "show the commands, or one command's help", ArgsUsage: "[COMMAND]",
				Action: func(c *cli.Context) error {
					name := c.Args().First()
					switch {
					case name == "":
						return cli.ShowAppHelp(c)
					case c.App.Command(name) == nil:
						return usageErr("", "no command %q", name)
					}
					return cli.ShowCommandHelp(c.Lineage()[1], name) // the app's context holds the commands
				},
			},
			{
				Name: "version", Usage: "print the lockstep version",
				Flags: []cli.Flag{output},
				Action: func(c *cli.Context) error {
					p, err := newPrinter(c)
					if err != nil {
						return err
					}
					return p.print(versionOut{version}, func(w *tw) { w.line("%s", version) })
				},
			},
		},
	}
	for _, cmd := range app.Commands {
		if ex, ok := examples[cmd.Name]; ok && cmd.Description == "" {
			cmd.Description = "Examples:\n   " + strings.ReplaceAll(strings.TrimSpace(ex), "\n", "\n   ")
		}
	}
	strict(app, map[string]argSpec{
		"publish": optArg, "show": oneArg, "query": someArgs, "diff": twoArgs,
		"verify": anyArgs, "inspect": oneArg, "completion": oneArg, "init": oneArg, "help": optArg, "keygen": oneArg,
	}, map[string][]string{
		"promote": {"bundle", "release"}, "rollback": {"bundle"}, "republish": {"bundle", "release"}, "sign": {"bundle", "release", "sign-key"}, "rebuild": {"bundle", "release"},
		"pull": {"bundle", "dest"}, "status": {"dest"}, "show": {"bundle"}, "history": {"bundle"}, "diff": {"bundle"},
	})
	return app
}

// examples are shown by each command's --help.
var examples = map[string]string{
	"build": `lockstep build --spec lockstep.yaml                  # stage a release under .lockstep/stage
lockstep build --spec lockstep.yaml -b places -o json`,
	"plan": `lockstep plan --spec lockstep.yaml                   # what run would publish; exit 3 if a gate fails
lockstep plan --spec lockstep.yaml -o json                 # for CI bots
lockstep plan --spec lockstep.yaml --override places/rows.max_drop --reason "dropped a source"`,
	"publish": `lockstep publish --spec lockstep.yaml                # build and publish, move no channel
lockstep publish .lockstep/stage/places/20261130T120000Z-1a2b3c4d`,
	"run": `lockstep --store s3://bucket/releases run --spec lockstep.yaml --reason "nightly"
lockstep run --spec lockstep.yaml -o json               # what cron, Airflow and CI call
lockstep run --spec lockstep.yaml --override places/rows.max_drop --reason "EU data moved out"`,
	"promote":   `lockstep promote -b places -c production -r 20261130T120000Z-1a2b3c4d --reason "QA ok"`,
	"rollback":  `lockstep rollback -b places -c production --reason "bad data"   # to the release before`,
	"republish": `lockstep republish -b places -c production -r 20261101T120000Z-9f8e7d6c`,
	"pull": `lockstep --store s3://bucket/releases pull -b places -c production --dest /srv/places
lockstep pull -b places --dest /srv/places --server-version 1.4.2 --keep 5`,
	"ls":       `lockstep ls; lockstep ls -b places -o json`,
	"schedule": `lockstep --store s3://bucket/releases schedule --spec lockstep.yaml --listen 127.0.0.1:9465`,
	"rebuild":  `lockstep rebuild -b places -r 20261130T120000Z-1a2b3c4d   # exit 0: every asset byte-identical`,
	"keygen":   `lockstep keygen release-2026   # release-2026.key (private, 0600) and release-2026.pub`,
	"sign":     `lockstep sign -b places -r 20261130T120000Z-1a2b3c4d --sign-key release-2027.key`,
	"show":     `lockstep show -b places 20261130T120000Z-1a2b3c4d`,
	"history":  `lockstep history -b places -c production -o json`,
	"query": `lockstep query --dest /srv/places names prefix:Dal
lockstep query -b places -r 20261130T120000Z-1a2b3c4d geoip 8.8.8.8
lockstep query --dest /srv/places names -- -5           # a key that starts with '-'
lockstep query --dest /srv/world countries 47.37,8.54 -33.92,18.42   # geo: the features that hold each point`,
	"diff":    `lockstep diff -b places 20261101T120000Z-9f8e7d6c 20261130T120000Z-1a2b3c4d`,
	"verify":  `lockstep verify --all --deep; lockstep verify --all --repair --from .lockstep/stage`,
	"gc":      `lockstep gc --dry-run; lockstep gc --keep-releases 20 --grace 48h`,
	"inspect": `lockstep inspect s3://bucket/spark/places; lockstep inspect --delta-version 12 /data/delta/places -o json`,
}
