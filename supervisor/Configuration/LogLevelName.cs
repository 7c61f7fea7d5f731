using Serilog.Events;

namespace Supervisor.Configuration;

/// <summary>Gunicorn's log level names, mapped onto Serilog's levels.</summary>
internal enum LogLevelName
{
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

internal static class LogLevelNames
{
    public static LogEventLevel ToSerilog(this LogLevelName level) => level switch
    {
        LogLevelName.Debug => LogEventLevel.Debug,
        LogLevelName.Info => LogEventLevel.Information,
        LogLevelName.Warning => LogEventLevel.Warning,
        LogLevelName.Error => LogEventLevel.Error,
        _ => LogEventLevel.Fatal,
    };

    public static string ToGunicornName(this LogEventLevel level) => level switch
    {
        LogEventLevel.Verbose or LogEventLevel.Debug => "DEBUG",
        LogEventLevel.Information => "INFO",
        LogEventLevel.Warning => "WARNING",
        LogEventLevel.Error => "ERROR",
        _ => "CRITICAL",
    };
}
