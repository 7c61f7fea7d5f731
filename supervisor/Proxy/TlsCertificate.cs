using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Supervisor.Cli;

namespace Supervisor.Proxy;

/// <summary>The --certfile/--keyfile pair, as PEM files (what Let's Encrypt and openssl write).</summary>
internal static class TlsCertificate
{
    public static X509Certificate2 Load(string certFile, string keyFile)
    {
        try
        {
            return X509Certificate2.CreateFromPemFile(certFile, keyFile);
        }
        catch (Exception exception) when (exception is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new UsageException($"--certfile '{certFile}' with --keyfile '{keyFile}' cannot be loaded ({exception.Message.TrimEnd('.')}); give a PEM certificate and its PEM private key");
        }
    }
}
