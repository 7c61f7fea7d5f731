using System.Diagnostics;
using Microsoft.AspNetCore.Http;

namespace Supervisor.WorkerHost;

/// <summary>
/// Times one request and renders its access-log line when it ends: in the proxy front for every request,
/// and in kernel and handoff modes in the worker-host, outermost in the app's pipeline. One code path, so
/// both modes write the same line for the same request.
/// </summary>
internal static class AccessLogRecording
{
    /// <param name="workerPid">The pid for <c>%(p)s</c>, read when the request has ended (the front learns it from the worker that answered).</param>
    /// <param name="write">Takes the finished line; it must not block.</param>
    public static async Task RecordAsync(HttpContext context, RequestDelegate next, AccessLogFormat format, Func<HttpContext, int?> workerPid, Action<string> write)
    {
        var started = Stopwatch.GetTimestamp();
        var counter = format.UsesResponseBytes ? ResponseByteCounter.Wrap(context.Response) : null;
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
                workerPid(context));
            write(format.Render(context, facts));
        }
    }

    /// <summary>Counts the body bytes sent to the client (Gunicorn's b and B).</summary>
    private sealed class ResponseByteCounter(Stream inner) : Stream
    {
        public long Written;

        public static ResponseByteCounter Wrap(HttpResponse response)
        {
            var counter = new ResponseByteCounter(response.Body);
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
