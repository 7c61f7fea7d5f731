using System.Text;
using Microsoft.AspNetCore.Http;
using Supervisor.Proxy;
using Supervisor.Tests.Infrastructure;

namespace Supervisor.Tests.Unit;

/// <summary>What the front learns from a SignalR negotiate response, and what it forgets.</summary>
public sealed class SignalRAffinityTests
{
    private readonly ManualTime _time = new();

    [Theory]
    [InlineData("""{"negotiateVersion":1,"connectionId":"public-id","connectionToken":"token-1","availableTransports":[]}""", "token-1")]
    [InlineData("""{"connectionId":"version-0-id","availableTransports":[]}""", "version-0-id")]
    public void A_negotiate_response_binds_the_id_its_transports_will_name(string response, string id)
    {
        var affinity = new SignalRAffinity(_time);
        affinity.Learn(Encoding.UTF8.GetBytes(response), "w2-1");

        Assert.Equal("w2-1", affinity.WorkerFor(Request($"?id={id}")));
        Assert.Null(affinity.WorkerFor(Request("?id=public-id-of-someone-else")));
        Assert.Null(affinity.WorkerFor(Request("")));
    }

    [Theory]
    [InlineData("""{"error":"The client requested version '0', but the server does not support this version."}""")]
    [InlineData("""{"url":"https://example.service.signalr.net/client/?hub=chat","accessToken":"x"}""")]
    [InlineData("""["connectionToken","x"]""")]
    [InlineData("""{"connectionToken":42}""")]
    [InlineData("not json at all")]
    [InlineData("")]
    public void Anything_else_binds_nothing(string response)
    {
        var affinity = new SignalRAffinity(_time);
        affinity.Learn(Encoding.UTF8.GetBytes(response), "w0-1");

        Assert.Equal(0, affinity.Count);
    }

    [Fact]
    public void A_token_unused_for_its_lifetime_is_forgotten_and_one_in_use_is_kept()
    {
        var affinity = new SignalRAffinity(_time);
        affinity.Learn("""{"connectionToken":"idle"}"""u8.ToArray(), "w0-1");
        affinity.Learn("""{"connectionToken":"polling"}"""u8.ToArray(), "w1-1");
        for (var minute = 0; minute < 12; minute++)
        {
            _time.Advance(TimeSpan.FromMinutes(1));
            Assert.Equal("w1-1", affinity.WorkerFor(Request("?id=polling")));
        }

        affinity.Learn("""{"connectionToken":"new"}"""u8.ToArray(), "w0-1"); // Learning sweeps, at most once a minute.

        Assert.Null(affinity.WorkerFor(Request("?id=idle")));
        Assert.Equal("w1-1", affinity.WorkerFor(Request("?id=polling")));
        Assert.Equal(2, affinity.Count);
    }

    [Theory]
    [InlineData("POST", "/hubs/chat/negotiate", true)]
    [InlineData("POST", "/_blazor/negotiate", true)]
    [InlineData("GET", "/hubs/chat/negotiate", false)]
    [InlineData("POST", "/negotiate-price", false)]
    public void Only_a_post_to_a_negotiate_path_is_read(string method, string path, bool negotiate)
    {
        var context = new DefaultHttpContext();
        context.Request.Method = method;
        context.Request.Path = path;
        Assert.Equal(negotiate, SignalRAffinity.IsNegotiate(context.Request));
    }

    private static HttpRequest Request(string query)
    {
        var context = new DefaultHttpContext();
        context.Request.Method = "GET";
        context.Request.Path = "/hubs/chat";
        context.Request.QueryString = new QueryString(query);
        return context.Request;
    }
}
