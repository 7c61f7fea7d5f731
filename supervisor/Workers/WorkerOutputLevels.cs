using Serilog.Events;

namespace Supervisor.Workers;

/// <summary>
/// The level of each line one output stream of a worker carries, read from the app's console logger where
/// its format shows one, so an app's <c>warn:</c> is logged as a warning and its <c>dbug:</c> follows
/// <c>--log-level</c>. Two formats are read:
/// <list type="bullet">
/// <item>the simple formatter (the default): an entry line <c>warn: Category[0]</c>, then the message on
/// lines indented by six spaces, which take the entry's level;</item>
/// <item>the systemd formatter (an app's <c>AddSystemdConsole</c>): one line per entry with a syslog
/// priority first, <c>&lt;4&gt;Category[0] message</c>.</item>
/// </list>
/// Any other line takes the stream's own level (stdout Information, stderr Error) and ends the entry.
/// One instance per stream: an entry's continuation lines come on the stream its entry line came on.
/// </summary>
internal sealed class WorkerOutputLevels(LogEventLevel unmarked)
{
    private const string Continuation = "      ";

    // The level of the entry whose indented message lines may follow; null outside an entry.
    private LogEventLevel? _entry;

    public LogEventLevel Classify(string line)
    {
        if (_entry is { } entry && line.StartsWith(Continuation, StringComparison.Ordinal))
        {
            return entry;
        }
        _entry = SimpleFormatterLevel(line);
        return _entry ?? SystemdPriorityLevel(line) ?? unmarked;
    }

    // Microsoft.Extensions.Logging.Console's SimpleConsoleFormatter, colours off (the output is a pipe).
    private static LogEventLevel? SimpleFormatterLevel(string line) =>
        line.Length >= 6 && line[4] == ':' && line[5] == ' '
            ? line[..4] switch
            {
                "trce" => LogEventLevel.Verbose,
                "dbug" => LogEventLevel.Debug,
                "info" => LogEventLevel.Information,
                "warn" => LogEventLevel.Warning,
                "fail" => LogEventLevel.Error,
                "crit" => LogEventLevel.Fatal,
                _ => null,
            }
            : null;

    // SystemdConsoleFormatter writes Critical as <2>, Error <3>, Warning <4>, Information <6>, Debug and Trace <7>.
    private static LogEventLevel? SystemdPriorityLevel(string line) =>
        line.Length >= 3 && line[0] == '<' && line[2] == '>'
            ? line[1] switch
            {
                >= '0' and <= '2' => LogEventLevel.Fatal,
                '3' => LogEventLevel.Error,
                '4' => LogEventLevel.Warning,
                '5' or '6' => LogEventLevel.Information,
                '7' => LogEventLevel.Debug,
                _ => null,
            }
            : null;
}
