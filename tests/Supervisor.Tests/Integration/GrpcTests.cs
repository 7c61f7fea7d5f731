using System.Net;
using CliWrap.Buffered;
using Grpc.Core;
using Grpc.Net.Client;
using Supervisor.Testing;
using Supervisor.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Supervisor.Tests.Integration;

/// <summary>
/// gRPC and other prior-knowledge HTTP/2 clients without TLS, on an h2c: address, with the .NET gRPC
/// client and curl; and gRPC where it cannot be carried, answered with its reason.
/// </summary>
public sealed class GrpcTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_grpc_client_is_served_on_an_h2c_address_beside_a_plain_one()
    {
        var artifacts = await Artifacts.GetAsync();
        // StartReadyAsync adds a plain 127.0.0.1:0; the h2c: one gets a port of its own.
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "2", "--bind", "h2c:127.0.0.1:0");
        var h2c = new Uri((await supervisor.WaitForLogAsync(@"Listening at: (http://\S+) \(HTTP/2 with prior knowledge only\)", Bound)).Groups[1].Value);
        Assert.NotEqual(supervisor.BaseAddress.Port, h2c.Port);

        using (var channel = GrpcChannel.ForAddress(h2c))
        {
            await AssertCallsAsync(channel.CreateCallInvoker(), workers: 2);
        }

        // curl with prior knowledge, a plain HTTP/1.1 client on the plain address, both served.
        var curl = await CliWrap.Cli.Wrap("curl").WithArguments(["-sS", "--http2-prior-knowledge", "-w", " %{http_version}", new Uri(h2c, "/").ToString()])
            .WithValidation(CliWrap.CommandResultValidation.None).ExecuteBufferedAsync();
        Assert.Equal("ok 2", curl.StandardOutput);
        using var http11 = supervisor.CreateClient();
        using var plain = await http11.GetAsync("/");
        Assert.Equal(HttpVersion.Version11, plain.Version);
        Assert.Equal("ok", await plain.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_grpc_client_is_served_over_tls()
    {
        var artifacts = await Artifacts.GetAsync();
        var scratch = Directory.CreateTempSubdirectory("sup-grpc-").FullName;
        try
        {
            var (certFile, keyFile, thumbprint) = TestCertificate.Create(scratch);
            await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "2", "--certfile", certFile, "--keyfile", keyFile);
            using var channel = GrpcChannel.ForAddress(supervisor.BaseAddress, new GrpcChannelOptions { HttpHandler = TestCertificate.CreateHandler(thumbprint) });
            await AssertCallsAsync(channel.CreateCallInvoker(), workers: 2);
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    [Fact]
    public async Task Grpc_where_the_workers_speak_http1_is_refused_at_start_or_answered_with_the_reason()
    {
        var artifacts = await Artifacts.GetAsync();
        var refused = await SupervisorCli.RunAsync(output, "--app", artifacts.TestApp, "--bind", "h2c:127.0.0.1:0", "--worker-protocol", "http1", "--check-config");
        SupervisorCli.AssertRefused(refused, 2, "--bind h2c:127.0.0.1:0 serves gRPC and h2c clients, whose calls need HTTP/2 to the workers too; drop --worker-protocol http1");

        // Over a plain address a gRPC call still reaches the front (gRPC-Web proxies, HTTP/1.1 tools): it
        // gets a gRPC status that names the fix, not the worker's bare 400.
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "1", "--worker-protocol", "http1");
        using var client = supervisor.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/{GrpcEcho.ServiceName}/Say") { Content = new ByteArrayContent([0, 0, 0, 0, 2, (byte)'h', (byte)'i']) };
        request.Content.Headers.ContentType = new("application/grpc");
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("12", Assert.Single(response.Headers.GetValues("grpc-status")));
        Assert.Contains("--worker-protocol%20http2", Assert.Single(response.Headers.GetValues("grpc-message")));
    }

    // Unary calls reach every worker, a server stream arrives whole, and a failing call's status, message
    // and trailers arrive as the service set them.
    private static async Task AssertCallsAsync(CallInvoker calls, int workers)
    {
        var pids = new HashSet<string>();
        for (var call = 0; call < 20; call++)
        {
            var reply = await calls.AsyncUnaryCall(GrpcEcho.Say, null, new CallOptions(deadline: DateTime.UtcNow + Bound), "José 日本");
            Assert.StartsWith("José 日本 from ", reply);
            pids.Add(reply["José 日本 from ".Length..]);
        }
        Assert.Equal(workers, pids.Count);

        using (var stream = calls.AsyncServerStreamingCall(GrpcEcho.Count, null, new CallOptions(deadline: DateTime.UtcNow + Bound), "5"))
        {
            var counted = new List<string>();
            while (await stream.ResponseStream.MoveNext(CancellationToken.None))
            {
                counted.Add(stream.ResponseStream.Current);
            }
            Assert.Equal(["1", "2", "3", "4", "5"], counted);
            Assert.Equal(StatusCode.OK, stream.GetStatus().StatusCode);
        }

        var failure = await Assert.ThrowsAsync<RpcException>(async () => await calls.AsyncUnaryCall(GrpcEcho.Fail, null, new CallOptions(deadline: DateTime.UtcNow + Bound), "no such thing: é"));
        Assert.Equal(StatusCode.NotFound, failure.StatusCode);
        Assert.Equal("no such thing: é", failure.Status.Detail);
        Assert.Contains(pids, pid => failure.Trailers.GetValue("where") == pid);
    }
}
