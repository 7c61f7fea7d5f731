using System.Buffers;
using Microsoft.AspNetCore.Http.Features;
using Supervisor.Configuration;
using Supervisor.Proxy.Http2;

namespace Supervisor.Proxy;

/// <summary>
/// Forwards the requests that need nothing of YARP — no body, no upgrade, no sticky session, HTTP/2
/// to the workers — straight from Kestrel's request to the front's own HTTP/2 connection and back,
/// without YARP's request and response messages in between. Measured, that costs the front less CPU
/// per request than the same client under YARP (bench/README.md). Every other request goes on to YARP.
/// It answers as YARP's path does: the worker's response as it comes, 502 when the worker fails before
/// answering, 504 at --request-timeout (an idle limit, as YARP's), each with a line in the error log.
/// </summary>
internal sealed class DirectForwarder(CurrentOptions current, WorkerDispatcher dispatcher, WorkerConnections connections, ILogger logger)
{
    private const int CopyBufferSize = 16 * 1024;
    private const int MaxAttempts = 3;

    // Connection-specific fields (RFC 9113 8.2.2): a worker's HTTP/2 response should carry none.
    private static readonly HashSet<string> HopByHopFields = new(StringComparer.OrdinalIgnoreCase)
    {
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
    };

    // Read once: both need a restart to change.
    private readonly bool _enabled = current.Value.WorkerProtocol == WorkerProtocolVersion.Http2 && !current.Value.StickySessions;

    public Task InvokeAsync(HttpContext context, RequestDelegate next) =>
        TakesRequest(context) is { } target ? ForwardAsync(context, target) : next(context);

    /// <summary>The request target to forward, or null to leave the request to YARP.</summary>
    private string? TakesRequest(HttpContext context)
    {
        if (!_enabled
            || context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody != false
            || HttpMethods.IsConnect(context.Request.Method)
            || context.Features.Get<IHttpUpgradeFeature>()?.IsUpgradableRequest == true)
        {
            return null;
        }
        // The target as the client sent it (origin form); the rare absolute form is left to YARP.
        var target = context.Features.Get<IHttpRequestFeature>()?.RawTarget;
        return target is ['/', ..] ? target : null;
    }

    private async Task ForwardAsync(HttpContext context, string target)
    {
        if (await Admission.AdmitAsync(context, dispatcher, affinity: null, current.Value.BootTimeout) is not { } lease)
        {
            return;
        }
        try
        {
            await ExchangeAsync(context, lease.Worker.Key, target);
        }
        finally
        {
            lease.Release();
        }
    }

    private async Task ExchangeAsync(HttpContext context, string worker, string target)
    {
        var timeout = current.Value.RequestTimeout;
        using var idleLimit = timeout > TimeSpan.Zero ? CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted) : null;
        idleLimit?.CancelAfter(timeout);
        var token = idleLimit?.Token ?? context.RequestAborted;
        WorkerStream stream;
        var (headerBlock, length) = RequestHeaderEncoder.Encode(context.Request, target);
        try
        {
            stream = await SendAsync(worker, headerBlock.AsMemory(0, length), token);
        }
        catch (Exception exception) when (exception is HttpRequestException or OperationCanceledException)
        {
            await AnswerFailureAsync(context, worker, target, timeout, exception);
            return;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(headerBlock);
        }
        try
        {
            CopyStatusAndHeaders(stream, context.Response);
            await CopyBodyAsync(stream, context, idleLimit, timeout, token);
        }
        catch (Exception exception) when (exception is IOException or OperationCanceledException)
        {
            if (!context.RequestAborted.IsCancellationRequested)
            {
                logger.Warning("Response from worker {Worker} to {Method} {Target} cut short: {Reason}", worker, context.Request.Method, target,
                    exception is OperationCanceledException ? $"no data within --request-timeout ({timeout.TotalSeconds:0.###} s)" : exception.Message);
                context.Abort(); // The status line is sent: only closing the connection tells the client.
            }
        }
        finally
        {
            stream.Abandon();
        }
    }

    // Sends the request and waits for its response's headers. A request the worker refused unprocessed
    // (a GOAWAY as it closes a connection that was idle for its keep-alive timeout, crossing the
    // request on the way) is sent again.
    private async Task<WorkerStream> SendAsync(string worker, ReadOnlyMemory<byte> headerBlock, CancellationToken token)
    {
        for (var attempt = 1; ; attempt++)
        {
            var stream = new WorkerStream();
            try
            {
                await connections.StartAsync(worker, stream, headerBlock, token);
                using (token.UnsafeRegister(static (state, canceled) => ((WorkerStream)state!).Cancel(canceled), stream))
                {
                    await stream.HeadersArrived;
                }
                return stream;
            }
            catch (RefusedStreamException) when (attempt < MaxAttempts)
            {
            }
            catch
            {
                stream.Abandon(); // Tells the worker to stop, if it had started.
                throw;
            }
        }
    }

    private Task AnswerFailureAsync(HttpContext context, string worker, string target, TimeSpan timeout, Exception exception)
    {
        if (context.RequestAborted.IsCancellationRequested)
        {
            return Task.CompletedTask; // The client left; the worker was told to stop (RST_STREAM).
        }
        var (status, reason, clientReason) = exception is OperationCanceledException
            ? (StatusCodes.Status504GatewayTimeout, $"no response within --request-timeout ({timeout.TotalSeconds:0.###} s)", "the worker did not answer in time")
            : (StatusCodes.Status502BadGateway, exception.Message, "the worker failed before answering");
        logger.Warning("Request {Method} {Target} to worker {Worker} answered {Status}: {Reason}", context.Request.Method, target, worker, status, reason);
        // The details (worker, socket path) are for the error log, not for the client.
        return Refusal.WriteAsync(context, status, clientReason);
    }

    private static void CopyStatusAndHeaders(WorkerStream stream, HttpResponse response)
    {
        response.StatusCode = stream.Status;
        foreach (var (name, value) in stream.Headers)
        {
            if (!name.StartsWith(':') && !HopByHopFields.Contains(name))
            {
                response.Headers.Append(name, value);
            }
        }
    }

    private static async Task CopyBodyAsync(WorkerStream stream, HttpContext context, CancellationTokenSource? idleLimit, TimeSpan timeout, CancellationToken token)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(CopyBufferSize);
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer, token)) > 0)
            {
                await context.Response.Body.WriteAsync(buffer.AsMemory(0, read), context.RequestAborted);
                idleLimit?.CancelAfter(timeout);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        if (stream.Trailers.Count > 0 && context.Response.SupportsTrailers())
        {
            foreach (var (name, value) in stream.Trailers)
            {
                context.Response.AppendTrailer(name, value);
            }
        }
    }
}
