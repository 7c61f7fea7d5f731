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
/// <para>
/// A request's failure stays that request's: a request the worker never received (its socket refused
/// the connection, the connection was lost before the request left, the worker refused the stream) is
/// sent again, to another worker if its own is gone; an idempotent one whose connection was lost before
/// any of its response came is sent again once (RFC 9110 9.2.2, as nginx does); any other failure
/// before the response is this request's 502 (504 at --request-timeout), with a line in the error log;
/// after the response has begun, only this client's connection is cut. Nothing here closes a
/// connection other requests share.
/// </para>
/// </summary>
internal sealed class DirectForwarder(CurrentOptions current, WorkerDispatcher dispatcher, SignalRAffinity signalR, WorkerConnections connections, ILogger logger)
{
    private const int CopyBufferSize = 16 * 1024;

    // What a client must take without a write waiting before its stream's window may grow: more than
    // Kestrel's response buffer (64 KB) and a socket's send buffer to a peer that reads nothing (about
    // 100 KB at an Ethernet MSS) absorb, so a client that never reads is never taken for a fast one.
    private const int KeepsUpAfter = 256 * 1024;


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
        var request = RequestHeaderEncoder.Encode(context.Request, target);
        var resends = new Resends(context.Request.Method);
        var affinity = signalR.WorkerFor(context.Request);
        try
        {
            while (true)
            {
                if (await Admission.AdmitAsync(context, dispatcher, affinity, current.Value.BootTimeout, resends.FailedWorker) is not { } lease)
                {
                    return;
                }
                try
                {
                    if (await ExchangeAsync(context, lease, request, target, resends) == Outcome.Answered)
                    {
                        return;
                    }
                }
                finally
                {
                    lease.Release();
                }
            }
        }
        finally
        {
            request.Return();
        }
    }

    private enum Outcome
    {
        /// <summary>The client has its answer: the worker's response, or the front's own for this request.</summary>
        Answered,

        /// <summary>The request is to be sent again (<see cref="Resends"/>).</summary>
        SendAgain,
    }

    /// <summary>When a request whose exchange failed before any of its response may be sent again, and where.</summary>
    private sealed class Resends(string method)
    {
        // A request the worker never received is always safe to send again; this bounds the tries so a
        // pool that keeps failing costs a few, not a spin. With the pauses below they span about 1.5 s:
        // longer than a killed worker takes to be noticed (its control connection closes), after which
        // the request waits for another worker, or the dead one's replacement.
        private int _notSentLeft = 5;

        // A request that may have been processed is sent again once at most: a request that kills its
        // worker (a "poison" request) then costs two workers, not all of them.
        private bool _resentAfterLoss;

        private int _sameWorkerTries;

        /// <summary>The worker the last attempt failed on: the next goes elsewhere if another worker can take it.</summary>
        public string? FailedWorker { get; private set; }

        /// <summary>
        /// True once the request is being sent again after its connection was lost: it goes on a connection
        /// of its own, so that if it is the one that broke the last (a fault the RFC scopes to the whole
        /// connection names no stream), it breaks only its own this time, not the others sent again with it.
        /// </summary>
        public bool Alone => _resentAfterLoss;

        public bool Allow(HttpRequestException failure, string worker, bool clientGone)
        {
            FailedWorker = worker;
            var allowed = !clientGone && failure switch
            {
                RequestNotSentException => _notSentLeft-- > 0,
                NoResponseException => !_resentAfterLoss && RequestMethods.IsIdempotent(method),
                _ => false,
            };
            _resentAfterLoss |= allowed && failure is NoResponseException;
            return allowed;
        }

        /// <summary>
        /// How long to wait before trying <paramref name="worker"/> again when it is the one that just
        /// failed (no other could take the request): it is most likely dying, and is given the time to be
        /// seen dead, 50 ms, then twice as long each time, up to 400 ms.
        /// </summary>
        public TimeSpan PauseBefore(string worker) =>
            worker != FailedWorker ? TimeSpan.Zero : TimeSpan.FromMilliseconds(50 << Math.Min(_sameWorkerTries++, 3));
    }

    private async Task<Outcome> ExchangeAsync(HttpContext context, WorkerLease lease, EncodedRequest request, string target, Resends resends)
    {
        var worker = lease.Worker.Key;
        var options = current.Value;
        var timeout = options.RequestTimeout;
        using var idleLimit = timeout > TimeSpan.Zero ? CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted) : null;
        idleLimit?.CancelAfter(timeout);
        var token = idleLimit?.Token ?? context.RequestAborted;
        var stream = new WorkerStream(HttpMethods.IsHead(context.Request.Method));
        try
        {
            try
            {
                if (resends.PauseBefore(worker) is var pause && pause > TimeSpan.Zero)
                {
                    await Task.Delay(pause, context.RequestAborted);
                }
                if (await connections.StartAsync(worker, stream, request.Block, request.ListSize, resends.Alone, token) == StartResult.HeaderListTooLarge)
                {
                    // The worker announced it would refuse them (SETTINGS_MAX_HEADER_LIST_SIZE): the app's own 431.
                    await Refusal.WriteAsync(context, StatusCodes.Status431RequestHeaderFieldsTooLarge, "the request's header fields are larger than the app accepts");
                    return Outcome.Answered;
                }
                using (token.UnsafeRegister(static (state, canceled) => ((WorkerStream)state!).Cancel(canceled), stream))
                {
                    await stream.HeadArrived;
                }
            }
            catch (HttpRequestException exception) when (resends.Allow(exception, worker, context.RequestAborted.IsCancellationRequested))
            {
                if (exception is RequestNotSentException { WorkerUnreachable: true })
                {
                    dispatcher.MarkUnreachable(worker, $"refused a connection on its socket ({exception.InnerException?.Message})");
                }
                else if (exception is NoResponseException)
                {
                    logger.Warning("Request {Method} {Target} was in flight at worker {Worker} when {Reason}; sending it again", context.Request.Method, target, worker, exception.Message);
                }
                else
                {
                    logger.Debug("Request {Method} {Target} was not sent to worker {Worker} ({Reason}); sending it again", context.Request.Method, target, worker, exception.Message);
                }
                return Outcome.SendAgain;
            }
            catch (Exception exception) when (exception is HttpRequestException or OperationCanceledException)
            {
                await AnswerFailureAsync(context, worker, target, timeout, exception);
                return Outcome.Answered;
            }
            if (CopyHead(stream, context.Response) is { } refusedField)
            {
                Reset(context.Response);
                await AnswerFailureAsync(context, worker, target, timeout, new HttpRequestException($"a response header the front cannot send: {refusedField}"));
                return Outcome.Answered;
            }
            var guard = new SlowClientGuard(lease, options.SendTimeout, dispatcher);
            if (!stream.HasBodyToRead)
            {
                // The head goes out now, as the app alone would send it: a server-sent-events stream or
                // a long poll shows its client the headers before its first event.
                await guard.FlushAsync(context);
            }
            if (context.Response.StatusCode == StatusCodes.Status200OK && SignalRAffinity.IsNegotiate(context.Request))
            {
                await CopyNegotiateResponseAsync(stream, context, worker, guard, token);
            }
            await CopyBodyAsync(stream, context, guard, idleLimit, timeout, token);
            return Outcome.Answered;
        }
        catch (ClientStalledException)
        {
            context.Abort(); // Counted, and reported by the arbiter's tick.
            return Outcome.Answered;
        }
        catch (IOException exception) when (!context.Response.HasStarted && exception.InnerException is HttpRequestException lost
            && resends.Allow(new NoResponseException($"{lost.Message}, after the response head but before any of it reached the client", lost), worker, context.RequestAborted.IsCancellationRequested))
        {
            // The worker's connection was lost (not this stream reset) after its head came, while the head
            // still waited for the body's first bytes: the client has nothing yet, so an idempotent request
            // goes again, once, as one lost before its head (a worker frozen and killed between its HEADERS
            // and DATA frames showed it).
            Reset(context.Response);
            logger.Warning("Request {Method} {Target} was in flight at worker {Worker} when {Reason}, after the response head but before any of it reached the client; sending it again",
                context.Request.Method, target, worker, lost.Message);
            return Outcome.SendAgain;
        }
        catch (Exception exception) when (exception is IOException or OperationCanceledException)
        {
            if (!context.RequestAborted.IsCancellationRequested)
            {
                logger.Warning("Response from worker {Worker} to {Method} {Target} cut short: {Reason}", worker, context.Request.Method, target,
                    exception is OperationCanceledException ? $"no data within --request-timeout ({timeout.TotalSeconds:0.###} s)" : exception.Message);
                context.Abort(); // The status line is sent: only closing the connection tells the client.
            }
            return Outcome.Answered;
        }
        finally
        {
            stream.Abandon();
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

    /// <summary>Copies the worker's status and fields to the response; the name of a field Kestrel refuses, or null.</summary>
    private static string? CopyHead(WorkerStream stream, HttpResponse response)
    {
        response.StatusCode = stream.Status;
        var headers = response.Headers;
        foreach (var (name, value) in stream.Headers)
        {
            if (ForwardingRules.IsResponseFieldNotForwarded(name)
                || (stream.Status == StatusCodes.Status204NoContent && name == "content-length" && value == "0"))
            {
                continue; // Kestrel sends no Content-Length with a 204 itself (YARP drops it too).
            }
            try
            {
                headers.Append(name, value);
            }
            catch (InvalidOperationException)
            {
                return name;
            }
        }
        return null;
    }

    private static void Reset(HttpResponse response)
    {
        response.Headers.Clear();
        response.StatusCode = StatusCodes.Status200OK;
    }

    // A SignalR negotiate response is read whole (up to its bound) before any of it goes out, so the front
    // knows the connection's worker before the client can name it; the rest, if any, is copied as usual.
    private async Task CopyNegotiateResponseAsync(WorkerStream stream, HttpContext context, string worker, SlowClientGuard guard, CancellationToken token)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(SignalRAffinity.MaxNegotiateResponse);
        try
        {
            var held = 0;
            var ended = false;
            while (held < SignalRAffinity.MaxNegotiateResponse && !ended)
            {
                var read = await stream.ReadAsync(buffer.AsMemory(held, SignalRAffinity.MaxNegotiateResponse - held), token);
                held += read;
                ended = read == 0;
            }
            if (ended)
            {
                signalR.Learn(buffer.AsMemory(0, held), worker);
            }
            await guard.WriteAsync(context, buffer.AsMemory(0, held));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static async Task CopyBodyAsync(WorkerStream stream, HttpContext context, SlowClientGuard guard, CancellationTokenSource? idleLimit, TimeSpan timeout, CancellationToken token)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(CopyBufferSize);
        long delivered = 0;
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer, token)) > 0)
            {
                await guard.WriteAsync(context, buffer.AsMemory(0, read));
                delivered += read;
                stream.ClientKeepsUp = !guard.HasWaited && delivered >= KeepsUpAfter;
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
