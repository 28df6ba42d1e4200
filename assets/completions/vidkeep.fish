# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_vidkeep_global_optspecs
    string join \n log-format= h/help V/version
end

function __fish_vidkeep_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_vidkeep_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_vidkeep_using_subcommand
    set -l cmd (__fish_vidkeep_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c vidkeep -n "__fish_vidkeep_needs_command" -l log-format -d 'Log line format' -r -f -a "human\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c vidkeep -n "__fish_vidkeep_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vidkeep -n "__fish_vidkeep_needs_command" -s V -l version -d 'Print version'
complete -c vidkeep -n "__fish_vidkeep_needs_command" -f -a "run" -d 'Run the daemon in the foreground until SIGINT/SIGTERM; SIGHUP reloads the config file'
complete -c vidkeep -n "__fish_vidkeep_needs_command" -f -a "serve" -d 'Serve the read-only catalogue UI on `[http] listen`, without running the daemon (for a machine that only browses the catalogue and the store)'
complete -c vidkeep -n "__fish_vidkeep_needs_command" -f -a "check" -d 'Validate spec files offline and print the request each would send'
complete -c vidkeep -n "__fish_vidkeep_needs_command" -f -a "jobs" -d 'List jobs, oldest first'
complete -c vidkeep -n "__fish_vidkeep_needs_command" -f -a "search" -d 'Find jobs by words of their prompt, name, project or tags, newest first (exit 1: none)'
complete -c vidkeep -n "__fish_vidkeep_needs_command" -f -a "export" -d 'Print every job with its assets'
complete -c vidkeep -n "__fish_vidkeep_needs_command" -f -a "show" -d 'Show one job: request, state history, assets, error'
complete -c vidkeep -n "__fish_vidkeep_needs_command" -f -a "spend" -d 'What was charged and possibly charged, in totals or as the ledger rows (CSV)'
complete -c vidkeep -n "__fish_vidkeep_needs_command" -f -a "verify" -d 'Re-read stored assets, compare their SHA-256 with the catalogue, record each check'
complete -c vidkeep -n "__fish_vidkeep_needs_command" -f -a "backup" -d 'Copy the live catalogue consistently (SQLite online backup) to DEST'
complete -c vidkeep -n "__fish_vidkeep_needs_command" -f -a "archive-url" -d 'Archive one URL into the configured storage with the daemon\'s archiver, and print what was stored and how fast (for benchmarks; records nothing in the catalogue)'
complete -c vidkeep -n "__fish_vidkeep_needs_command" -f -a "resolve" -d 'Decide what happens to an `uncertain` job'
complete -c vidkeep -n "__fish_vidkeep_needs_command" -f -a "simulate" -d 'Run the platform simulator as a server'
complete -c vidkeep -n "__fish_vidkeep_needs_command" -f -a "demo" -d 'Run a self-contained demo: simulator + daemon in a fresh folder, the example specs, the catalogue'
complete -c vidkeep -n "__fish_vidkeep_needs_command" -f -a "config" -d 'Configuration tools'
complete -c vidkeep -n "__fish_vidkeep_needs_command" -f -a "catalog" -d 'Catalogue tools'
complete -c vidkeep -n "__fish_vidkeep_needs_command" -f -a "completions" -d 'Print shell completions (bash, zsh, fish, ...) generated from this command line, or with --write DIR write them and the man page (the .deb ships these files)'
complete -c vidkeep -n "__fish_vidkeep_needs_command" -f -a "man" -d 'Print the man page (roff), generated from this command line'
complete -c vidkeep -n "__fish_vidkeep_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand run" -s c -l config -d 'Path of the TOML config file (the Debian package\'s is /etc/vidkeep/config.toml)' -r -F
complete -c vidkeep -n "__fish_vidkeep_using_subcommand run" -l log-format -d 'Log line format' -r -f -a "human\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c vidkeep -n "__fish_vidkeep_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand serve" -s c -l config -d 'Path of the TOML config file (the Debian package\'s is /etc/vidkeep/config.toml)' -r -F
complete -c vidkeep -n "__fish_vidkeep_using_subcommand serve" -l log-format -d 'Log line format' -r -f -a "human\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c vidkeep -n "__fish_vidkeep_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand check" -s c -l config -d 'Config whose [defaults] apply (optional)' -r -F
complete -c vidkeep -n "__fish_vidkeep_using_subcommand check" -l log-format -d 'Log line format' -r -f -a "human\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c vidkeep -n "__fish_vidkeep_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand jobs" -s c -l config -d 'Path of the TOML config file (the Debian package\'s is /etc/vidkeep/config.toml)' -r -F
complete -c vidkeep -n "__fish_vidkeep_using_subcommand jobs" -l state -d 'Only jobs in this state' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand jobs" -l model -d 'Only jobs of this model (one of the models vidkeep knows)' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand jobs" -l project -d 'Only jobs of this project (any case, as search)' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand jobs" -l tag -d 'Only jobs with this tag' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand jobs" -l since -d 'Only jobs created on or after this date (YYYY-MM-DD or RFC 3339)' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand jobs" -l until -d 'Only jobs created up to this date: YYYY-MM-DD includes that whole day (UTC), as the UI\'s "to" does; an RFC 3339 time is exclusive' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand jobs" -l limit -d 'At most this many jobs (a note on stderr says when the list was cut)' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand jobs" -l after -d 'Only the jobs listed after this one (a job id: the last of a `--limit` list, for the next)' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand jobs" -s q -l query -d 'Words that must all appear in the prompt, name, project or tags' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand jobs" -l log-format -d 'Log line format' -r -f -a "human\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c vidkeep -n "__fish_vidkeep_using_subcommand jobs" -l json -d 'JSON for scripts instead of a table'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand jobs" -l wide -d 'Every column in full (id, creation time, video key), however wide'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand jobs" -l rejected -d 'The specs refused at intake, with the reason, instead of jobs'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand jobs" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand search" -s c -l config -d 'Path of the TOML config file (the Debian package\'s is /etc/vidkeep/config.toml)' -r -F
complete -c vidkeep -n "__fish_vidkeep_using_subcommand search" -l state -d 'Only jobs in this state' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand search" -l model -d 'Only jobs of this model (one of the models vidkeep knows)' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand search" -l project -d 'Only jobs of this project (any case, as search)' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand search" -l tag -d 'Only jobs with this tag' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand search" -l since -d 'Only jobs created on or after this date (YYYY-MM-DD or RFC 3339)' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand search" -l until -d 'Only jobs created up to this date: YYYY-MM-DD includes that whole day (UTC), as the UI\'s "to" does; an RFC 3339 time is exclusive' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand search" -l limit -d 'At most this many jobs (a note on stderr says when the list was cut)' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand search" -l after -d 'Only the jobs listed after this one (a job id: the last of a `--limit` list, for the next)' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand search" -l log-format -d 'Log line format' -r -f -a "human\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c vidkeep -n "__fish_vidkeep_using_subcommand search" -l json -d 'JSON for scripts instead of a table'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand search" -l wide -d 'Every column in full, however wide'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand search" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand export" -s c -l config -d 'Path of the TOML config file (the Debian package\'s is /etc/vidkeep/config.toml)' -r -F
complete -c vidkeep -n "__fish_vidkeep_using_subcommand export" -l format -d 'Output format' -r -f -a "json\t'A JSON array of jobs'
csv\t'CSV, one row per job'"
complete -c vidkeep -n "__fish_vidkeep_using_subcommand export" -l state -d 'Only jobs in this state' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand export" -l model -d 'Only jobs of this model (one of the models vidkeep knows)' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand export" -l project -d 'Only jobs of this project (any case, as search)' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand export" -l tag -d 'Only jobs with this tag' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand export" -l since -d 'Only jobs created on or after this date (YYYY-MM-DD or RFC 3339)' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand export" -l until -d 'Only jobs created up to this date: YYYY-MM-DD includes that whole day (UTC), as the UI\'s "to" does; an RFC 3339 time is exclusive' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand export" -l limit -d 'At most this many jobs (a note on stderr says when the list was cut)' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand export" -l after -d 'Only the jobs listed after this one (a job id: the last of a `--limit` list, for the next)' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand export" -s q -l query -d 'Words that must all appear in the prompt, name, project or tags' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand export" -l log-format -d 'Log line format' -r -f -a "human\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c vidkeep -n "__fish_vidkeep_using_subcommand export" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand show" -s c -l config -d 'Path of the TOML config file (the Debian package\'s is /etc/vidkeep/config.toml)' -r -F
complete -c vidkeep -n "__fish_vidkeep_using_subcommand show" -l log-format -d 'Log line format' -r -f -a "human\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c vidkeep -n "__fish_vidkeep_using_subcommand show" -l json -d 'JSON for scripts'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand show" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand spend" -s c -l config -d 'Path of the TOML config file (the Debian package\'s is /etc/vidkeep/config.toml)' -r -F
complete -c vidkeep -n "__fish_vidkeep_using_subcommand spend" -l since -d 'From this day (YYYY-MM-DD in `[budget] timezone`, or RFC 3339)' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand spend" -l until -d 'Before this day (YYYY-MM-DD in `[budget] timezone`, or RFC 3339)' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand spend" -l by -d 'How to group the totals' -r -f -a "day\t'Calendar day in the budget\'s time zone'
month\t'Calendar month in the budget\'s time zone'
model\t'Model code'
project\t'Project (`-` for none)'"
complete -c vidkeep -n "__fish_vidkeep_using_subcommand spend" -l format -d 'Output format (csv: one row per charged or possibly-charged submission)' -r -f -a "table\t'An aligned table for people'
json\t'JSON totals for scripts'
csv\t'One row per charged or possibly-charged submission'"
complete -c vidkeep -n "__fish_vidkeep_using_subcommand spend" -l log-format -d 'Log line format' -r -f -a "human\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c vidkeep -n "__fish_vidkeep_using_subcommand spend" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand verify" -s c -l config -d 'Path of the TOML config file (the Debian package\'s is /etc/vidkeep/config.toml)' -r -F
complete -c vidkeep -n "__fish_vidkeep_using_subcommand verify" -l sample -d 'Check only this percentage of the assets, least recently checked first' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand verify" -l since -d 'Check only assets stored since this date (YYYY-MM-DD or RFC 3339)' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand verify" -l log-format -d 'Log line format' -r -f -a "human\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c vidkeep -n "__fish_vidkeep_using_subcommand verify" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand backup" -s c -l config -d 'Path of the TOML config file (the Debian package\'s is /etc/vidkeep/config.toml)' -r -F
complete -c vidkeep -n "__fish_vidkeep_using_subcommand backup" -l log-format -d 'Log line format' -r -f -a "human\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c vidkeep -n "__fish_vidkeep_using_subcommand backup" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand archive-url" -s c -l config -d 'Path of the TOML config file (the Debian package\'s is /etc/vidkeep/config.toml)' -r -F
complete -c vidkeep -n "__fish_vidkeep_using_subcommand archive-url" -l log-format -d 'Log line format' -r -f -a "human\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c vidkeep -n "__fish_vidkeep_using_subcommand archive-url" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand resolve" -s c -l config -d 'Path of the TOML config file (the Debian package\'s is /etc/vidkeep/config.toml)' -r -F
complete -c vidkeep -n "__fish_vidkeep_using_subcommand resolve" -l log-format -d 'Log line format' -r -f -a "human\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c vidkeep -n "__fish_vidkeep_using_subcommand resolve" -l resubmit -d 'Submit again (the platform may charge a second time)'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand resolve" -l abandon -d 'Give the job up: it becomes `failed`'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand resolve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand simulate" -l listen -d 'Address to listen on' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand simulate" -l config -d 'Simulator settings (TOML with the keys of `SimConfig`)' -r -F
complete -c vidkeep -n "__fish_vidkeep_using_subcommand simulate" -l log-format -d 'Log line format' -r -f -a "human\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c vidkeep -n "__fish_vidkeep_using_subcommand simulate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand demo" -l dir -d 'Folder to run in (default: a new temporary folder, kept and printed)' -r -F
complete -c vidkeep -n "__fish_vidkeep_using_subcommand demo" -l log-format -d 'Log line format' -r -f -a "human\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c vidkeep -n "__fish_vidkeep_using_subcommand demo" -l serve -d 'Keep running after the examples are archived, until Ctrl-C'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand demo" -s v -l verbose -d 'Show the daemon\'s log instead of the progress lines'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand demo" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand config; and not __fish_seen_subcommand_from check help" -l log-format -d 'Log line format' -r -f -a "human\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c vidkeep -n "__fish_vidkeep_using_subcommand config; and not __fish_seen_subcommand_from check help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand config; and not __fish_seen_subcommand_from check help" -f -a "check" -d 'Validate a config and print it resolved (paths absolute, defaults filled)'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand config; and not __fish_seen_subcommand_from check help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand config; and __fish_seen_subcommand_from check" -s c -l config -d 'Path of the TOML config file (the Debian package\'s is /etc/vidkeep/config.toml)' -r -F
complete -c vidkeep -n "__fish_vidkeep_using_subcommand config; and __fish_seen_subcommand_from check" -l log-format -d 'Log line format' -r -f -a "human\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c vidkeep -n "__fish_vidkeep_using_subcommand config; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "check" -d 'Validate a config and print it resolved (paths absolute, defaults filled)'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand catalog; and not __fish_seen_subcommand_from rebuild copy help" -l log-format -d 'Log line format' -r -f -a "human\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c vidkeep -n "__fish_vidkeep_using_subcommand catalog; and not __fish_seen_subcommand_from rebuild copy help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand catalog; and not __fish_seen_subcommand_from rebuild copy help" -f -a "rebuild" -d 'Make a new catalogue from the sidecars in storage alone (after the catalogue is lost): every archived job with its assets, hashes, request, task id and accepted submission'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand catalog; and not __fish_seen_subcommand_from rebuild copy help" -f -a "copy" -d 'Copy a SQLite catalogue into a new, empty PostgreSQL (or SQLite) catalogue, checked: every table in one transaction, ids kept; row counts and checksums of both sides must agree before it commits'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand catalog; and not __fish_seen_subcommand_from rebuild copy help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand catalog; and __fish_seen_subcommand_from rebuild" -s c -l config -d 'Path of the TOML config file (the Debian package\'s is /etc/vidkeep/config.toml)' -r -F
complete -c vidkeep -n "__fish_vidkeep_using_subcommand catalog; and __fish_seen_subcommand_from rebuild" -l to -d 'Write the new catalogue here instead of [catalog] path' -r -F
complete -c vidkeep -n "__fish_vidkeep_using_subcommand catalog; and __fish_seen_subcommand_from rebuild" -l log-format -d 'Log line format' -r -f -a "human\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c vidkeep -n "__fish_vidkeep_using_subcommand catalog; and __fish_seen_subcommand_from rebuild" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand catalog; and __fish_seen_subcommand_from copy" -l from -d 'The catalogue to copy: sqlite:PATH' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand catalog; and __fish_seen_subcommand_from copy" -l to -d 'Where to: a postgres:// URL, or sqlite:PATH (created if missing)' -r
complete -c vidkeep -n "__fish_vidkeep_using_subcommand catalog; and __fish_seen_subcommand_from copy" -l log-format -d 'Log line format' -r -f -a "human\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c vidkeep -n "__fish_vidkeep_using_subcommand catalog; and __fish_seen_subcommand_from copy" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand catalog; and __fish_seen_subcommand_from help" -f -a "rebuild" -d 'Make a new catalogue from the sidecars in storage alone (after the catalogue is lost): every archived job with its assets, hashes, request, task id and accepted submission'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand catalog; and __fish_seen_subcommand_from help" -f -a "copy" -d 'Copy a SQLite catalogue into a new, empty PostgreSQL (or SQLite) catalogue, checked: every table in one transaction, ids kept; row counts and checksums of both sides must agree before it commits'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand catalog; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand completions" -l write -d 'Write `completions/vidkeep.bash`, `completions/_vidkeep`, `completions/vidkeep.fish` and `man/vidkeep.1` under this folder' -r -F
complete -c vidkeep -n "__fish_vidkeep_using_subcommand completions" -l log-format -d 'Log line format' -r -f -a "human\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c vidkeep -n "__fish_vidkeep_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand man" -l log-format -d 'Log line format' -r -f -a "human\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c vidkeep -n "__fish_vidkeep_using_subcommand man" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand help; and not __fish_seen_subcommand_from run serve check jobs search export show spend verify backup archive-url resolve simulate demo config catalog completions man help" -f -a "run" -d 'Run the daemon in the foreground until SIGINT/SIGTERM; SIGHUP reloads the config file'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand help; and not __fish_seen_subcommand_from run serve check jobs search export show spend verify backup archive-url resolve simulate demo config catalog completions man help" -f -a "serve" -d 'Serve the read-only catalogue UI on `[http] listen`, without running the daemon (for a machine that only browses the catalogue and the store)'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand help; and not __fish_seen_subcommand_from run serve check jobs search export show spend verify backup archive-url resolve simulate demo config catalog completions man help" -f -a "check" -d 'Validate spec files offline and print the request each would send'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand help; and not __fish_seen_subcommand_from run serve check jobs search export show spend verify backup archive-url resolve simulate demo config catalog completions man help" -f -a "jobs" -d 'List jobs, oldest first'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand help; and not __fish_seen_subcommand_from run serve check jobs search export show spend verify backup archive-url resolve simulate demo config catalog completions man help" -f -a "search" -d 'Find jobs by words of their prompt, name, project or tags, newest first (exit 1: none)'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand help; and not __fish_seen_subcommand_from run serve check jobs search export show spend verify backup archive-url resolve simulate demo config catalog completions man help" -f -a "export" -d 'Print every job with its assets'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand help; and not __fish_seen_subcommand_from run serve check jobs search export show spend verify backup archive-url resolve simulate demo config catalog completions man help" -f -a "show" -d 'Show one job: request, state history, assets, error'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand help; and not __fish_seen_subcommand_from run serve check jobs search export show spend verify backup archive-url resolve simulate demo config catalog completions man help" -f -a "spend" -d 'What was charged and possibly charged, in totals or as the ledger rows (CSV)'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand help; and not __fish_seen_subcommand_from run serve check jobs search export show spend verify backup archive-url resolve simulate demo config catalog completions man help" -f -a "verify" -d 'Re-read stored assets, compare their SHA-256 with the catalogue, record each check'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand help; and not __fish_seen_subcommand_from run serve check jobs search export show spend verify backup archive-url resolve simulate demo config catalog completions man help" -f -a "backup" -d 'Copy the live catalogue consistently (SQLite online backup) to DEST'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand help; and not __fish_seen_subcommand_from run serve check jobs search export show spend verify backup archive-url resolve simulate demo config catalog completions man help" -f -a "archive-url" -d 'Archive one URL into the configured storage with the daemon\'s archiver, and print what was stored and how fast (for benchmarks; records nothing in the catalogue)'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand help; and not __fish_seen_subcommand_from run serve check jobs search export show spend verify backup archive-url resolve simulate demo config catalog completions man help" -f -a "resolve" -d 'Decide what happens to an `uncertain` job'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand help; and not __fish_seen_subcommand_from run serve check jobs search export show spend verify backup archive-url resolve simulate demo config catalog completions man help" -f -a "simulate" -d 'Run the platform simulator as a server'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand help; and not __fish_seen_subcommand_from run serve check jobs search export show spend verify backup archive-url resolve simulate demo config catalog completions man help" -f -a "demo" -d 'Run a self-contained demo: simulator + daemon in a fresh folder, the example specs, the catalogue'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand help; and not __fish_seen_subcommand_from run serve check jobs search export show spend verify backup archive-url resolve simulate demo config catalog completions man help" -f -a "config" -d 'Configuration tools'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand help; and not __fish_seen_subcommand_from run serve check jobs search export show spend verify backup archive-url resolve simulate demo config catalog completions man help" -f -a "catalog" -d 'Catalogue tools'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand help; and not __fish_seen_subcommand_from run serve check jobs search export show spend verify backup archive-url resolve simulate demo config catalog completions man help" -f -a "completions" -d 'Print shell completions (bash, zsh, fish, ...) generated from this command line, or with --write DIR write them and the man page (the .deb ships these files)'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand help; and not __fish_seen_subcommand_from run serve check jobs search export show spend verify backup archive-url resolve simulate demo config catalog completions man help" -f -a "man" -d 'Print the man page (roff), generated from this command line'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand help; and not __fish_seen_subcommand_from run serve check jobs search export show spend verify backup archive-url resolve simulate demo config catalog completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "check" -d 'Validate a config and print it resolved (paths absolute, defaults filled)'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand help; and __fish_seen_subcommand_from catalog" -f -a "rebuild" -d 'Make a new catalogue from the sidecars in storage alone (after the catalogue is lost): every archived job with its assets, hashes, request, task id and accepted submission'
complete -c vidkeep -n "__fish_vidkeep_using_subcommand help; and __fish_seen_subcommand_from catalog" -f -a "copy" -d 'Copy a SQLite catalogue into a new, empty PostgreSQL (or SQLite) catalogue, checked: every table in one transaction, ids kept; row counts and checksums of both sides must agree before it commits'
