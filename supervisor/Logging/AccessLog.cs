using System.Diagnostics;
using Supervisor.Configuration;
using Supervisor.Proxy;

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
    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        if (_writer is null)
        {
            await next(context);
            return;
        }
        var started = Stopwatch.GetTimestamp();
        var format = _format;
        var counter = format.UsesResponseBytes ? CountingStream.Wrap(context.Response) : null;
        try
        {
            await next(context);
        }
        finally
        {
            var facts = new AccessLogFacts(
                context.Connection.RemoteIpAddress,
                DateTimeOffset.Now,
                Stopwatch.GetElapsedTime(started),
                counter?.Written ?? 0,
                context.Features.Get<WorkerLease>()?.WorkerPid);
            _writer?.Write(format.Render(context, facts));
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_writer is { } writer)
        {
            await writer.DisposeAsync();
        }
    }

    /// <summary>Counts the body bytes sent to the client (Gunicorn's b and B).</summary>
    private sealed class CountingStream(Stream inner) : Stream
    {
        public long Written;

        public static CountingStream Wrap(HttpResponse response)
        {
            var counter = new CountingStream(response.Body);
            response.Body = counter;
            return counter;
        }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush() => inner.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count)
        {
            Written += count;
            inner.Write(buffer, offset, count);
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Written += buffer.Length;
            return inner.WriteAsync(buffer, cancellationToken);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    }
}
