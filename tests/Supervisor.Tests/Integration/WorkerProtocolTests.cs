using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using Supervisor.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Supervisor.Tests.Integration;

/// <summary>
/// What must hold whichever protocol the proxy speaks to the workers (HTTP/2 cleartext by default,
/// HTTP/1.1 as an option): WebSockets, and large bodies both ways (the download also sends trailers).
/// </summary>
public sealed class WorkerProtocolTests(ITestOutputHelper output)
{
    public static TheoryData<string> Protocols => new() { "http2", "http1" };

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task WebSockets_are_proxied_to_the_workers(string protocol)
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "2", "--worker-protocol", protocol);
        using var socket = new ClientWebSocket();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await socket.ConnectAsync(new Uri($"ws://{supervisor.BaseAddress.Authority}/ws"), timeout.Token);

        for (var i = 0; i < 10; i++)
        {
            var message = Encoding.UTF8.GetBytes($"message {i} " + new string('x', i * 1000));
            await socket.SendAsync(message, WebSocketMessageType.Text, endOfMessage: true, timeout.Token);
            var echo = new byte[message.Length];
            var received = 0;
            while (received < echo.Length)
            {
                received += (await socket.ReceiveAsync(echo.AsMemory(received), timeout.Token)).Count;
            }
            Assert.Equal(message, echo);
        }
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", timeout.Token);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, socket.CloseStatus);
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Large_uploads_and_downloads_arrive_intact(string protocol)
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "2", "--worker-protocol", protocol);
        using var client = supervisor.CreateClient();

        // Under the app's own request body limit (Kestrel's default, 30 MB), which the supervisor leaves to it.
        var upload = RandomNumberGenerator.GetBytes(24 * 1_048_576);
        using (var response = await client.PostAsync("/upload", new ByteArrayContent(upload)))
        {
            response.EnsureSuccessStatusCode();
            Assert.Equal($"{upload.Length} {Convert.ToHexString(SHA256.HashData(upload))}", await response.Content.ReadAsStringAsync());
        }

        using (var response = await client.GetAsync("/download?mb=48", HttpCompletionOption.ResponseHeadersRead))
        {
            response.EnsureSuccessStatusCode();
            await using var body = await response.Content.ReadAsStreamAsync();
            var buffer = new byte[65536];
            long position = 0;
            long firstWrongByte = -1;
            int read;
            while ((read = await body.ReadAsync(buffer)) > 0)
            {
                for (var i = 0; i < read; i++, position++)
                {
                    // The app sends byte p as p % 251.
                    if (buffer[i] != (byte)(position % 251) && firstWrongByte < 0)
                    {
                        firstWrongByte = position;
                    }
                }
            }
            Assert.Equal(-1, firstWrongByte);
            Assert.Equal(48 * 1_048_576L, position);
        }
    }
}
