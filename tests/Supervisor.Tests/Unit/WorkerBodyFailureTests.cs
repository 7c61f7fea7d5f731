using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Supervisor.Proxy;
using Yarp.ReverseProxy.Forwarder;

namespace Supervisor.Tests.Unit;

/// <summary>
/// YARP answers 400 (RequestBodyClient) when the worker's connection cancels a body copy: the blame goes
/// back to the worker (502), and only there; a client's own failures keep their answer.
/// </summary>
public sealed class WorkerBodyFailureTests
{
    private static readonly Exception SendFailure = new HttpRequestException("An error occurred while sending the request.", new IOException("Connection reset by peer"));

    [Fact]
    public void A_body_copy_cancelled_by_the_workers_connection_is_the_workers_failure_answered_502()
    {
        var context = Forwarded(ForwarderError.RequestBodyClient, new AggregateException(new OperationCanceledException(), SendFailure), StatusCodes.Status400BadRequest);

        WorkerBodyFailure.Correct(context);

        Assert.Equal(StatusCodes.Status502BadGateway, context.Response.StatusCode);
        var failure = context.GetForwarderErrorFeature()!;
        Assert.Equal(ForwarderError.RequestBodyDestination, failure.Error);
        Assert.Same(SendFailure, failure.Exception);
    }

    public static TheoryData<string, Exception, int, bool> ClientFailures => new()
    {
        { "a client that went away", new AggregateException(new OperationCanceledException(), SendFailure), StatusCodes.Status400BadRequest, true },
        { "a malformed body", new AggregateException(new BadHttpRequestException("Unexpected end of request content."), SendFailure), StatusCodes.Status400BadRequest, false },
        { "a body too slow to come (YARP's activity timeout)", new AggregateException(new OperationCanceledException(), SendFailure), StatusCodes.Status408RequestTimeout, false },
    };

    [Theory]
    [MemberData(nameof(ClientFailures))]
    public void A_clients_own_failure_keeps_its_answer(string what, Exception exception, int status, bool clientGone)
    {
        var context = Forwarded(ForwarderError.RequestBodyClient, exception, status);
        using var aborted = new CancellationTokenSource();
        context.RequestAborted = aborted.Token;
        if (clientGone)
        {
            aborted.Cancel();
        }

        WorkerBodyFailure.Correct(context);

        Assert.True(status == context.Response.StatusCode, what);
        Assert.Equal(ForwarderError.RequestBodyClient, context.GetForwarderErrorFeature()!.Error);
    }

    private static DefaultHttpContext Forwarded(ForwarderError error, Exception exception, int status)
    {
        var context = new DefaultHttpContext();
        context.Features.Set<IForwarderErrorFeature>(new Failure(error, exception));
        context.Response.StatusCode = status;
        return context;
    }

    private sealed record Failure(ForwarderError Error, Exception? Exception) : IForwarderErrorFeature;
}
