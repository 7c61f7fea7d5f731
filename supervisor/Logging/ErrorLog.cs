using Serilog;
using Serilog.Core;
using Serilog.Events;
using Serilog.Formatting;
using Supervisor.Configuration;

namespace Supervisor.Logging;

/// <summary>
/// The supervisor's error log (Gunicorn's name for it): its own events and its workers' output, through
/// Serilog, in Gunicorn's line format or as JSON, to stderr or a file. Level, format and destination
/// follow the configuration on reload; <see cref="Reopen"/> serves SIGUSR1.
/// </summary>
internal sealed class ErrorLog : IAsyncDisposable
{
    private readonly LoggingLevelSwitch _level;
    private readonly FormattingSink _sink;
    private readonly LogWriter _writer;

    private ErrorLog(SupervisorOptions options)
    {
        _level = new LoggingLevelSwitch(options.LogLevel.ToSerilog());
        _writer = new LogWriter("error log", options.ErrorLogFile, Console.OpenStandardError(), problem => Logger?.Warning("{Problem}", problem));
        _sink = new FormattingSink(_writer, FormatterFor(options.LogFormat));
        Logger = new LoggerConfiguration()
            .MinimumLevel.ControlledBy(_level)
            // Framework chatter (every proxied request, Kestrel's connection events) stays out of the
            // operator's log unless something is wrong.
            .MinimumLevel.Override("Microsoft", LogEventLevel.Warning)
            // YARP's warnings name no worker and repeat what the supervisor handles; its path's failures
            // are logged by the supervisor in its own words (Proxy/ForwarderErrorLog.cs).
            .MinimumLevel.Override("Yarp", LogEventLevel.Error)
            .MinimumLevel.Override("System", LogEventLevel.Warning)
            // Off, not just quiet: while this category is enabled at any level, ASP.NET Core starts an
            // Activity for every request (for log scopes), and the proxy's HttpClient a child one.
            .MinimumLevel.Override("Microsoft.AspNetCore.Hosting.Diagnostics", LevelAlias.Off)
            // The host logs a failed start with a stack trace; the supervisor reports it in one line.
            .MinimumLevel.Override("Microsoft.Extensions.Hosting", LogEventLevel.Fatal)
            // AddReverseProxy brings DataProtection along; the supervisor never protects anything with it.
            .MinimumLevel.Override("Microsoft.AspNetCore.DataProtection", LogEventLevel.Error)
            .WriteTo.Sink(_sink)
            .CreateLogger();
    }

    public Logger Logger { get; }

    /// <summary>Opens the destination; a file that cannot be written is a configuration error, reported before anything starts.</summary>
    public static ErrorLog Open(SupervisorOptions options)
    {
        try
        {
            return new ErrorLog(options);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            throw new Cli.UsageException($"--error-logfile '{options.ErrorLogFile}' cannot be written ({LogWriter.DescribeOpenFailure(options.ErrorLogFile, exception)}); give a writable file or - for stderr");
        }
    }

    public void Reopen() => _writer.Reopen();

    /// <summary>Takes the logging settings of a reloaded configuration.</summary>
    public void Apply(SupervisorOptions options)
    {
        _level.MinimumLevel = options.LogLevel.ToSerilog();
        _sink.Formatter = FormatterFor(options.LogFormat);
        _writer.Retarget(options.ErrorLogFile);
    }

    public async ValueTask DisposeAsync()
    {
        await Logger.DisposeAsync();
        await _writer.DisposeAsync();
    }

    private static ITextFormatter FormatterFor(ErrorLogFormat format) =>
        format == ErrorLogFormat.Json ? new JsonLogFormatter() : new GunicornFormatter();

    /// <summary>Formats each event into one line for the writer, on the caller's thread; the writing happens elsewhere.</summary>
    private sealed class FormattingSink(LogWriter writer, ITextFormatter formatter) : ILogEventSink
    {
        private volatile ITextFormatter _formatter = formatter;

        public ITextFormatter Formatter
        {
            set => _formatter = value;
        }

        public void Emit(LogEvent logEvent)
        {
            using var line = new StringWriter();
            _formatter.Format(logEvent, line);
            writer.Write(line.ToString());
        }
    }
}
