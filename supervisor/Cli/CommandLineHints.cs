using System.CommandLine;
using Supervisor.Configuration;

namespace Supervisor.Cli;

/// <summary>
/// The one line for a command line the parser refused. A Gunicorn habit with no equivalent here is
/// answered with what to do instead; a misspelt option with the option it was likely meant to be, as the
/// config file's keys are; anything else with the parser's own message.
/// </summary>
internal static class CommandLineHints
{
    private const string RunAsUser = "is not offered: start the supervisor as the user it should run as (systemd's User=, a container's USER)";

    // Gunicorn's flags that have no counterpart, by every spelling Gunicorn accepts.
    private static readonly Dictionary<string, string> GunicornOnly = new(StringComparer.Ordinal)
    {
        ["--reload"] = "--reload (restart on code changes) is not offered: send SIGHUP to load the app from disk again (kill -HUP PID, systemctl reload)",
        ["--daemon"] = "--daemon is not offered: run the supervisor under systemd (deploy/systemd/) or as a container's entrypoint, which keep it in the background",
        ["-D"] = "-D (--daemon) is not offered: run the supervisor under systemd (deploy/systemd/) or as a container's entrypoint, which keep it in the background",
        ["--preload"] = "--preload is not offered: .NET cannot fork a loaded app, so each worker loads it itself",
        ["--threads"] = "--threads is not needed: a .NET worker serves requests on many threads; --worker-connections bounds how many it takes at once",
        ["--worker-class"] = "--worker-class is not offered: every worker is the app's own Kestrel server",
        ["-k"] = "-k (--worker-class) is not offered: every worker is the app's own Kestrel server",
        ["--user"] = "--user " + RunAsUser,
        ["-u"] = "-u (--user) " + RunAsUser,
        ["--group"] = "--group " + RunAsUser,
        ["-g"] = "-g (--group) " + RunAsUser,
        ["--statsd-host"] = "--statsd-host is not offered: read the access log (--access-logfile) for request counts and timings",
        ["--paste"] = "--paste is not offered: give the app with --app PATH (its built .dll or executable)",
    };

    /// <summary>The message for <paramref name="result"/>'s first error.</summary>
    public static string Explain(ParseResult result)
    {
        if (result.UnmatchedTokens is not [var token, ..])
        {
            return result.Errors[0].Message;
        }
        if (GunicornOnly.TryGetValue(token, out var habit))
        {
            return habit;
        }
        if (!token.StartsWith('-'))
        {
            return $"unexpected argument '{token}': the app is given with --app PATH (its built .dll or executable), not as a positional argument or Gunicorn's module:variable";
        }
        var options = result.RootCommandResult.Command.Options.Where(option => !option.Hidden).SelectMany(option => option.Aliases.Prepend(option.Name)).Where(name => name.StartsWith("--", StringComparison.Ordinal));
        var (closest, distance) = options.Select(name => (name, EditDistance.Between(token, name))).MinBy(candidate => candidate.Item2);
        return distance <= 2
            ? $"unknown option '{token}' (did you mean {closest}?); supervisor --help lists them all"
            : $"unknown option '{token}'; supervisor --help lists them all";
    }
}
