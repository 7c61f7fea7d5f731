using System.Net;
using System.Net.Sockets;

namespace Supervisor.WorkerHost;

/// <summary>
/// The peers allowed to tell the supervisor who the client is (<c>--forwarded-allow-ips</c>): single
/// addresses, networks in CIDR notation, or <c>*</c> for any peer, as in Gunicorn.
/// </summary>
internal sealed class TrustedProxies
{
    private readonly IReadOnlyList<IPNetwork> _networks;
    private readonly IReadOnlyList<string> _spelling;

    private TrustedProxies(bool trustsAny, IReadOnlyList<IPNetwork> networks, IReadOnlyList<string> spelling)
    {
        TrustsAny = trustsAny;
        _networks = networks;
        _spelling = spelling;
    }

    public bool TrustsAny { get; }

    public static TrustedProxies Parse(IEnumerable<string> entries)
    {
        var spelling = entries.ToList();
        if (spelling.Contains("*"))
        {
            return new TrustedProxies(trustsAny: true, [], ["*"]);
        }
        var networks = new List<IPNetwork>();
        foreach (var entry in spelling)
        {
            if (IPNetwork.TryParse(entry, out var network))
            {
                networks.Add(network);
            }
            else if (IPAddress.TryParse(entry, out var address))
            {
                networks.Add(new IPNetwork(address, address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128));
            }
            else
            {
                throw new FormatException($"'{entry}' is not an IP address or network; use addresses or networks such as 10.0.0.0/8, comma-separated, or *");
            }
        }
        return new TrustedProxies(trustsAny: false, networks, spelling);
    }

    /// <summary>True when <paramref name="peer"/> may speak for the client. An IPv4 peer seen on a dual-stack socket counts as itself.</summary>
    public bool Trusts(IPAddress? peer)
    {
        if (TrustsAny)
        {
            return true;
        }
        if (peer is null)
        {
            return false;
        }
        if (peer.IsIPv4MappedToIPv6)
        {
            peer = peer.MapToIPv4();
        }
        foreach (var network in _networks)
        {
            if (network.Contains(peer))
            {
                return true;
            }
        }
        return false;
    }

    public override string ToString() => string.Join(",", _spelling);
}
