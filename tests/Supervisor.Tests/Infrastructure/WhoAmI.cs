using System.Net.Http.Json;

namespace Supervisor.Tests.Infrastructure;

/// <summary>What the test app's <c>/whoami</c> says about the request it served.</summary>
internal sealed record WhoAmI(int Pid, string? RemoteAddress, string? Host, string Scheme, string? WorkerId, string WorkingDirectory)
{
    public static async Task<WhoAmI> GetAsync(HttpClient client, Action<HttpRequestMessage>? configure = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/whoami");
        configure?.Invoke(request);
        using var response = await client.SendAsync(request);
        response.EnsureSuccessStatusCode();
        return await response.Content.ReadFromJsonAsync<WhoAmI>() ?? throw new InvalidOperationException("empty /whoami");
    }
}
