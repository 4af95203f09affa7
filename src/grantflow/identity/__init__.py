"""Identity sources: directories (LDAP, Active Directory) whose people sign in to grantflow and whose groups give
roles through each role's source rules."""
