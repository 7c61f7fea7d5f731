using Supervisor.Configuration;
using Supervisor.Proxy;
using Supervisor.WorkerHost;

namespace Supervisor.Logging;

/// <summary>
/// The access log: one line per request, in the configured Gunicorn format, for requests the workers
/// served and those the supervisor answered itself (503, 504, 413, 431). The line is formatted when the
/// request ends and written by a background task, so a slow disk never slows requests. Off by default;
/// a reload can turn it on, off, or point it elsewhere.
/// </summary>
internal sealed class AccessLog(ErrorLog errorLog) : IAsyncDisposable
{
    private volatile AccessLogFormat _format = Settings.AccessLogFormatSetting.Default;
    private volatile LogWriter? _writer;

    /// <summary>Opens the access log at start; a file that cannot be written is a configuration error.</summary>
    public static AccessLog Open(SupervisorOptions options, ErrorLog errorLog)
    {
        var accessLog = new AccessLog(errorLog);
        try
        {
            accessLog.Apply(options);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            throw new Cli.UsageException($"--access-logfile '{options.AccessLogFile}' cannot be written ({LogWriter.DescribeOpenFailure(options.AccessLogFile!, exception)}); give a writable file or - for stdout");
        }
        return accessLog;
    }

    /// <summary>Takes the access-log settings of a reloaded configuration; a file that cannot be opened is reported, not thrown.</summary>
    public void Reconfigure(SupervisorOptions options)
    {
        try
        {
            Apply(options);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            errorLog.Logger.Error("The access log '{File}' cannot be written ({Reason}); the access log stays off", options.AccessLogFile, exception.Message);
        }
    }

    private void Apply(SupervisorOptions options)
    {
        _format = options.AccessLogFormat;
        var writer = _writer;
        if (options.AccessLogFile is null)
        {
            _writer = null;
            _ = writer?.DisposeAsync().AsTask(); // Drains what it holds in the background.
        }
        else if (writer is null)
        {
            _writer = new LogWriter("access log", options.AccessLogFile, Console.OpenStandardOutput(), problem => errorLog.Logger.Warning("{Problem}", problem));
        }
        else
        {
            writer.Retarget(options.AccessLogFile);
        }
    }

    public void Reopen() => _writer?.Reopen();

    /// <summary>The middleware, outermost in the pipeline so that it sees each request's final status.</summary>
    public Task InvokeAsync(HttpContext context, RequestDelegate next) =>
        _writer is null
            ? next(context)
            : AccessLogRecording.RecordAsync(context, next, _format, static context => context.Features.Get<WorkerLease>()?.WorkerPid, line => _writer?.Write(line));

    /// <summary>Kernel and handoff modes: a line a worker wrote for a request it served (<see cref="WorkerAccessLines"/>).</summary>
    public void WriteLine(string line) => _writer?.Write(line);

    public async ValueTask DisposeAsync()
    {
        if (_writer is { } writer)
        {
            await writer.DisposeAsync();
        }
    }
}
